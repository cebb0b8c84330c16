//! Build script: compiles the tiny C helper `c/tapdev.c` (the TUNSETIFF ioctl) into a static
//! library linked into the crate. Nothing else happens here, apart from refusing, with one
//! clear line, a target other than Linux: the C helper needs `<linux/if_tun.h>`, and the
//! daemon needs the tap device, epoll, signalfd and timerfd.

fn main() {
    println!("cargo:rerun-if-changed=c/tapdev.c");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if os != "linux" {
        eprintln!(
            "error: ethcloud builds for Linux only (the target's OS is {os:?}): it needs the \
             tap device (/dev/net/tun), epoll, signalfd and timerfd"
        );
        std::process::exit(1);
    }
    cc::Build::new()
        .file("c/tapdev.c")
        .warnings(true)
        .extra_warnings(true)
        .compile("tapdev");
}

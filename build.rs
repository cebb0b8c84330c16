//! Build script: compiles the tiny C helper `c/tapdev.c` (the TUNSETIFF ioctl) into a static
//! library linked into the crate. Nothing else happens here.

fn main() {
    println!("cargo:rerun-if-changed=c/tapdev.c");
    cc::Build::new()
        .file("c/tapdev.c")
        .warnings(true)
        .extra_warnings(true)
        .compile("tapdev");
}

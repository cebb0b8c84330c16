# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_ethcloud_global_optspecs
    string join \n d/device= l/listen= t/token= c/connect= peer-timeout= mac-timeout= v/verbose q/quiet config= keepalive= max-peers= max-macs= max-macs-per-peer= broadcast-limit= user= group= ifup= ifdown= mtu= stats-file= stats-interval= stats-format= no-offload no-relay no-aegis kernel-path no-kernel-path relay-rate= threads= busy-poll= key-file= private-key= trusted= rekey-after= completions= control-socket= h/help V/version
end

function __fish_ethcloud_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_ethcloud_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_ethcloud_using_subcommand
    set -l cmd (__fish_ethcloud_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c ethcloud -n "__fish_ethcloud_needs_command" -s d -l device -d 'Name of the tap device (%d lets the kernel pick a number) [default: ethcloud%d]' -r
complete -c ethcloud -n "__fish_ethcloud_needs_command" -s l -l listen -d 'Address to listen on (`[::]:port` also serves IPv4 peers) [default: 0.0.0.0:3210]' -r
complete -c ethcloud -n "__fish_ethcloud_needs_command" -s t -l token -d 'Token that identifies the network [default: 0]' -r
complete -c ethcloud -n "__fish_ethcloud_needs_command" -s c -l connect -d 'List of peers (addr:port) to connect to; repeat for more peers' -r
complete -c ethcloud -n "__fish_ethcloud_needs_command" -l peer-timeout -d 'Peer timeout in seconds [default: 1800]' -r
complete -c ethcloud -n "__fish_ethcloud_needs_command" -l mac-timeout -d 'Mac table entry timeout in seconds [default: 300]' -r
complete -c ethcloud -n "__fish_ethcloud_needs_command" -l config -d 'Read options from this TOML file (keys are the long options, e.g. peer-timeout = 60); options on the command line win. Convention: /etc/ethcloud/NAME.toml' -r -F
complete -c ethcloud -n "__fish_ethcloud_needs_command" -l keepalive -d 'Send every peer something at least every SECS seconds, which keeps NAT mappings open [default: a quarter of --peer-timeout, at most 60]' -r
complete -c ethcloud -n "__fish_ethcloud_needs_command" -l max-peers -d 'Most peers kept at once [default: 4096]' -r
complete -c ethcloud -n "__fish_ethcloud_needs_command" -l max-macs -d 'Most MAC table entries [default: 65536]' -r
complete -c ethcloud -n "__fish_ethcloud_needs_command" -l max-macs-per-peer -d 'Most MAC table entries behind one peer [default: 4096]' -r
complete -c ethcloud -n "__fish_ethcloud_needs_command" -l broadcast-limit -d 'Broadcast and multicast frames per second accepted from one source [default: no limit]' -r
complete -c ethcloud -n "__fish_ethcloud_needs_command" -l user -d 'Switch to this user once the tap device and the socket are open' -r
complete -c ethcloud -n "__fish_ethcloud_needs_command" -l group -d 'Switch to this group along with --user [default: the user\'s primary group]' -r
complete -c ethcloud -n "__fish_ethcloud_needs_command" -l ifup -d 'Shell command run once the tap device is up, with $IFNAME set to its name' -r
complete -c ethcloud -n "__fish_ethcloud_needs_command" -l ifdown -d 'Shell command run at shutdown before the tap device goes, with $IFNAME set' -r
complete -c ethcloud -n "__fish_ethcloud_needs_command" -l mtu -d 'MTU of the tap device [default: 1450 with an IPv4 listen address, 1430 with IPv6; 41 less with --key-file or --private-key]' -r
complete -c ethcloud -n "__fish_ethcloud_needs_command" -l stats-file -d 'Write peers, MAC table and counters to this file every --stats-interval seconds' -r -F
complete -c ethcloud -n "__fish_ethcloud_needs_command" -l stats-interval -d 'Seconds between two writes of --stats-file [default: 10]' -r
complete -c ethcloud -n "__fish_ethcloud_needs_command" -l stats-format -d 'Format of --stats-file [default: text]' -r -f -a "text\t'One fact per line, for people and `grep`'
prometheus\t'The Prometheus text exposition format, e.g. for node_exporter\'s textfile collector'"
complete -c ethcloud -n "__fish_ethcloud_needs_command" -l relay-rate -d 'Relay for others at most MBIT megabits per second in all; 0: use relays but never be one [default: 100]' -r
complete -c ethcloud -n "__fish_ethcloud_needs_command" -l threads -d 'Forward frames from the device on N threads, one per queue of a multi-queue tap [default: 1]' -r
complete -c ethcloud -n "__fish_ethcloud_needs_command" -l busy-poll -d 'After traffic, poll without sleeping for USECS microseconds (lower latency, more CPU) [default: 50]' -r
complete -c ethcloud -n "__fish_ethcloud_needs_command" -l key-file -d 'Seal every packet with the key in FILE (32 bytes, 64 hex digits, or a passphrase)' -r -F
complete -c ethcloud -n "__fish_ethcloud_needs_command" -l private-key -d 'Per-node keys: this node\'s private key (from `ethcloud genkey`, mode 600); needs --trusted' -r -F
complete -c ethcloud -n "__fish_ethcloud_needs_command" -l trusted -d 'Public keys this node accepts: a file of keys, one per line, or a directory of such files; repeat for more' -r -F
complete -c ethcloud -n "__fish_ethcloud_needs_command" -l rekey-after -d 'Per-node keys: make new session keys with each peer every SECS seconds [default: 120]' -r
complete -c ethcloud -n "__fish_ethcloud_needs_command" -l completions -d 'Print a completion script for SHELL to standard output and exit' -r -f -a "bash\t''
elvish\t''
fish\t''
powershell\t''
zsh\t''"
complete -c ethcloud -n "__fish_ethcloud_needs_command" -l control-socket -d 'Unix socket `ethcloud show` asks (root-only) [default: /run/ethcloud/DEVICE.sock]' -r -F
complete -c ethcloud -n "__fish_ethcloud_needs_command" -s v -l verbose -d 'Log verbosely'
complete -c ethcloud -n "__fish_ethcloud_needs_command" -s q -l quiet -d 'Only print error messages'
complete -c ethcloud -n "__fish_ethcloud_needs_command" -l no-offload -d 'Turn off the segmentation offloads (tap TSO/USO/checksum, UDP GSO/GRO, TCP and UDP coalescing)'
complete -c ethcloud -n "__fish_ethcloud_needs_command" -l no-relay -d 'Never relay (network key or per-node keys only): do not forward frames for two peers that cannot reach each other, and do not send through other nodes'
complete -c ethcloud -n "__fish_ethcloud_needs_command" -l no-aegis -d 'Never seal with AEGIS-128L or AEGIS-128X4, nor tell peers we open them: sessions and sealed frames stay on AES-GCM or ChaCha20-Poly1305 (network key or per-node keys only)'
complete -c ethcloud -n "__fish_ethcloud_needs_command" -l kernel-path -d 'Carry frames to and from direct IPv4 peers in the kernel (BPF) even with a firewall on the host (default: only without one; clear protocol, Linux 6.6 or later)'
complete -c ethcloud -n "__fish_ethcloud_needs_command" -l no-kernel-path -d 'Carry every frame through the daemon, never in the kernel'
complete -c ethcloud -n "__fish_ethcloud_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ethcloud -n "__fish_ethcloud_needs_command" -s V -l version -d 'Print version'
complete -c ethcloud -n "__fish_ethcloud_needs_command" -f -a "show" -d 'Ask the running daemon for its peers, MAC table and counters (like `wg show`)'
complete -c ethcloud -n "__fish_ethcloud_needs_command" -f -a "genkey" -d 'Print a new private key for --private-key (e.g. umask 077; ethcloud genkey > vpn0.key)'
complete -c ethcloud -n "__fish_ethcloud_needs_command" -f -a "pubkey" -d 'Read a private key on standard input and print its public key, for the others\' --trusted'
complete -c ethcloud -n "__fish_ethcloud_using_subcommand show" -l config -d 'The daemon\'s config file: its control-socket and device keys name the socket' -r -F
complete -c ethcloud -n "__fish_ethcloud_using_subcommand show" -l socket -d 'The daemon\'s control socket [default: the --config file\'s control-socket, else /run/ethcloud/DEVICE.sock (DEVICE from here or the config file), else the only socket in /run/ethcloud, else /run/ethcloud/ethcloud0.sock]' -r -F
complete -c ethcloud -n "__fish_ethcloud_using_subcommand show" -l json -d 'Print the answer as JSON (one object; its keys are in the man page)'
complete -c ethcloud -n "__fish_ethcloud_using_subcommand show" -s h -l help -d 'Print help'
complete -c ethcloud -n "__fish_ethcloud_using_subcommand genkey" -s h -l help -d 'Print help'
complete -c ethcloud -n "__fish_ethcloud_using_subcommand pubkey" -s h -l help -d 'Print help'

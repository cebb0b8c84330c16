complete -c ethcloud -l config -d 'Read options from this TOML file (keys are the long options, e.g. peer-timeout = 60); options on the command line win. Convention: /etc/ethcloud/NAME.toml' -r -F
complete -c ethcloud -s d -l device -d 'Name of the tap device (%d lets the kernel pick a number) [default: ethcloud%d]' -r
complete -c ethcloud -s l -l listen -d 'Address to listen on ([::]:port also serves IPv4 peers) [default: 0.0.0.0:3210]' -r
complete -c ethcloud -s t -l token -d 'Token that identifies the network [default: 0]' -r
complete -c ethcloud -s c -l connect -d 'List of peers (addr:port) to connect to; repeat for more peers' -r
complete -c ethcloud -l peer-timeout -d 'Peer timeout in seconds [default: 1800]' -r
complete -c ethcloud -l mac-timeout -d 'Mac table entry timeout in seconds [default: 300]' -r
complete -c ethcloud -l max-peers -d 'Most peers kept at once [default: 4096]' -r
complete -c ethcloud -l max-macs -d 'Most MAC table entries [default: 65536]' -r
complete -c ethcloud -l max-macs-per-peer -d 'Most MAC table entries behind one peer [default: 4096]' -r
complete -c ethcloud -l broadcast-limit -d 'Broadcast and multicast frames per second accepted from one source [default: no limit]' -r
complete -c ethcloud -l user -d 'Switch to this user once the tap device and the socket are open' -r
complete -c ethcloud -l group -d 'Switch to this group along with --user [default: the user\'s primary group]' -r
complete -c ethcloud -l ifup -d 'Shell command run once the tap device is up, with $IFNAME set to its name' -r
complete -c ethcloud -l ifdown -d 'Shell command run at shutdown before the tap device goes, with $IFNAME set' -r
complete -c ethcloud -l mtu -d 'MTU of the tap device [default: 1450 with an IPv4 listen address, 1430 with IPv6; 41 less with --key-file]' -r
complete -c ethcloud -l stats-file -d 'Write peers, MAC table and counters to this file every --stats-interval seconds' -r -F
complete -c ethcloud -l stats-interval -d 'Seconds between two writes of --stats-file [default: 10]' -r
complete -c ethcloud -l stats-format -d 'Format of --stats-file [default: text]' -r -f -a "text\t'One fact per line, for people and `grep`'
prometheus\t'The Prometheus text exposition format, e.g. for node_exporter\'s textfile collector'"
complete -c ethcloud -l busy-poll -d 'After traffic, poll without sleeping for USECS microseconds (lower latency, more CPU) [default: 50]' -r
complete -c ethcloud -l key-file -d 'Seal every packet with the key in FILE (32 bytes, 64 hex digits, or a passphrase)' -r -F
complete -c ethcloud -l completions -d 'Print a completion script for SHELL to standard output and exit' -r -f -a "bash\t''
elvish\t''
fish\t''
powershell\t''
zsh\t''"
complete -c ethcloud -s v -l verbose -d 'Log verbosely'
complete -c ethcloud -s q -l quiet -d 'Only print error messages'
complete -c ethcloud -l no-offload -d 'Turn off the segmentation offloads (tap TSO/USO/checksum, UDP GSO/GRO, TCP coalescing)'
complete -c ethcloud -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ethcloud -s V -l version -d 'Print version'

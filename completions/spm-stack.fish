# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_spm_stack_global_optspecs
    string join \n home= h/help V/version
end

function __fish_spm_stack_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_spm_stack_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_spm_stack_using_subcommand
    set -l cmd (__fish_spm_stack_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c spm-stack -n "__fish_spm_stack_needs_command" -l home -d 'The stack\'s folder: state, logs (logs/<name>.log), the server\'s store, the local lake' -r -F
complete -c spm-stack -n "__fish_spm_stack_needs_command" -s h -l help -d 'Print help'
complete -c spm-stack -n "__fish_spm_stack_needs_command" -s V -l version -d 'Print version'
complete -c spm-stack -n "__fish_spm_stack_needs_command" -f -a "up" -d 'Start the stack (unless it runs already) and return once every component is healthy'
complete -c spm-stack -n "__fish_spm_stack_needs_command" -f -a "down" -d 'Stop everything the stack started, the lake flushing what it holds'
complete -c spm-stack -n "__fish_spm_stack_needs_command" -f -a "status" -d 'Each component\'s process, health and key figures (exit 1 unless all are healthy)'
complete -c spm-stack -n "__fish_spm_stack_needs_command" -f -a "probe" -d 'Exit 0 when a component answers healthy: an HTTP health page, or a client connected to nats-server (for container health checks)'
complete -c spm-stack -n "__fish_spm_stack_needs_command" -f -a "supervise" -d 'Run the supervisor in the foreground (`up` starts it detached)'
complete -c spm-stack -n "__fish_spm_stack_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c spm-stack -n "__fish_spm_stack_using_subcommand up" -l live -d 'Live data instead of a replay: `spm-ingest` reads this feed (`auto`: Databento when DATABENTO_API_KEY is set, else Massive when MASSIVE_API_KEY or POLYGON_API_KEY is)' -r -f -a "auto\t''
databento\t''
massive\t''"
complete -c spm-stack -n "__fish_spm_stack_using_subcommand up" -l speed -d 'Replay speed: 1 = real time, 0 = as fast as possible' -r
complete -c spm-stack -n "__fish_spm_stack_using_subcommand up" -l bin-dir -d 'Where the spm-* binaries are [default: beside spm-stack]' -r -F
complete -c spm-stack -n "__fish_spm_stack_using_subcommand up" -l nats-server -d 'The nats-server binary' -r -F
complete -c spm-stack -n "__fish_spm_stack_using_subcommand up" -l nats-config -d 'The server\'s configuration (JetStream; ports and store are set by spm-stack)' -r -F
complete -c spm-stack -n "__fish_spm_stack_using_subcommand up" -l nats-port -d 'NATS client port' -r
complete -c spm-stack -n "__fish_spm_stack_using_subcommand up" -l nats-monitor-port -d 'nats-server\'s monitoring port (health, /connz, /jsz)' -r
complete -c spm-stack -n "__fish_spm_stack_using_subcommand up" -l gateway-port -d 'The gateway\'s port (the dashboard)' -r
complete -c spm-stack -n "__fish_spm_stack_using_subcommand up" -l lake-root -d 'The lake\'s root [default: {home}/lake, or S3 (spm-lake\'s S3_* settings) when S3_ENDPOINT is set]' -r
complete -c spm-stack -n "__fish_spm_stack_using_subcommand up" -l wait -d 'How long to wait for every component to be healthy, in seconds' -r
complete -c spm-stack -n "__fish_spm_stack_using_subcommand up" -l home -d 'The stack\'s folder: state, logs (logs/<name>.log), the server\'s store, the local lake' -r -F
complete -c spm-stack -n "__fish_spm_stack_using_subcommand up" -s h -l help -d 'Print help'
complete -c spm-stack -n "__fish_spm_stack_using_subcommand down" -l home -d 'The stack\'s folder: state, logs (logs/<name>.log), the server\'s store, the local lake' -r -F
complete -c spm-stack -n "__fish_spm_stack_using_subcommand down" -s h -l help -d 'Print help'
complete -c spm-stack -n "__fish_spm_stack_using_subcommand status" -l format -r -f -a "table\t''
json\t''"
complete -c spm-stack -n "__fish_spm_stack_using_subcommand status" -l home -d 'The stack\'s folder: state, logs (logs/<name>.log), the server\'s store, the local lake' -r -F
complete -c spm-stack -n "__fish_spm_stack_using_subcommand status" -s h -l help -d 'Print help'
complete -c spm-stack -n "__fish_spm_stack_using_subcommand probe" -l http -d 'GET this URL: healthy when it answers 2xx' -r
complete -c spm-stack -n "__fish_spm_stack_using_subcommand probe" -l monitor -d 'nats-server\'s monitoring URL (http://HOST:8222): healthy when a client named --client is connected' -r
complete -c spm-stack -n "__fish_spm_stack_using_subcommand probe" -l client -d 'The client\'s connection name (each spm command names its connection after itself)' -r
complete -c spm-stack -n "__fish_spm_stack_using_subcommand probe" -l timeout -d 'Seconds to wait for an answer' -r
complete -c spm-stack -n "__fish_spm_stack_using_subcommand probe" -l home -d 'The stack\'s folder: state, logs (logs/<name>.log), the server\'s store, the local lake' -r -F
complete -c spm-stack -n "__fish_spm_stack_using_subcommand probe" -s h -l help -d 'Print help'
complete -c spm-stack -n "__fish_spm_stack_using_subcommand supervise" -l home -d 'The stack\'s folder: state, logs (logs/<name>.log), the server\'s store, the local lake' -r -F
complete -c spm-stack -n "__fish_spm_stack_using_subcommand supervise" -s h -l help -d 'Print help'
complete -c spm-stack -n "__fish_spm_stack_using_subcommand help; and not __fish_seen_subcommand_from up down status probe supervise help" -f -a "up" -d 'Start the stack (unless it runs already) and return once every component is healthy'
complete -c spm-stack -n "__fish_spm_stack_using_subcommand help; and not __fish_seen_subcommand_from up down status probe supervise help" -f -a "down" -d 'Stop everything the stack started, the lake flushing what it holds'
complete -c spm-stack -n "__fish_spm_stack_using_subcommand help; and not __fish_seen_subcommand_from up down status probe supervise help" -f -a "status" -d 'Each component\'s process, health and key figures (exit 1 unless all are healthy)'
complete -c spm-stack -n "__fish_spm_stack_using_subcommand help; and not __fish_seen_subcommand_from up down status probe supervise help" -f -a "probe" -d 'Exit 0 when a component answers healthy: an HTTP health page, or a client connected to nats-server (for container health checks)'
complete -c spm-stack -n "__fish_spm_stack_using_subcommand help; and not __fish_seen_subcommand_from up down status probe supervise help" -f -a "supervise" -d 'Run the supervisor in the foreground (`up` starts it detached)'
complete -c spm-stack -n "__fish_spm_stack_using_subcommand help; and not __fish_seen_subcommand_from up down status probe supervise help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'

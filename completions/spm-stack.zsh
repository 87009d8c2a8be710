#compdef spm-stack

autoload -U is-at-least

_spm-stack() {
    typeset -A opt_args
    typeset -a _arguments_options
    local ret=1

    if is-at-least 5.2; then
        _arguments_options=(-s -S -C)
    else
        _arguments_options=(-s -C)
    fi

    local context curcontext="$curcontext" state line
    _arguments "${_arguments_options[@]}" : \
'--home=[The stack'\''s folder\: state, logs (logs/<name>.log), the server'\''s store, the local lake]:HOME:_files' \
'-h[Print help]' \
'--help[Print help]' \
'-V[Print version]' \
'--version[Print version]' \
":: :_spm-stack_commands" \
"*::: :->spm-stack" \
&& ret=0
    case $state in
    (spm-stack)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:spm-stack-command-$line[1]:"
        case $line[1] in
            (up)
_arguments "${_arguments_options[@]}" : \
'()--live=[Live data instead of a replay\: \`spm-ingest\` reads this feed (\`auto\`\: Databento when DATABENTO_API_KEY is set, else Massive when MASSIVE_API_KEY or POLYGON_API_KEY is)]:FEED:(auto databento massive)' \
'--speed=[Replay speed\: 1 = real time, 0 = as fast as possible]:SPEED:_default' \
'--bin-dir=[Where the spm-* binaries are \[default\: beside spm-stack\]]:DIR:_files' \
'--nats-server=[The nats-server binary]:NATS_SERVER:_files' \
'--nats-config=[The server'\''s configuration (JetStream; ports and store are set by spm-stack)]:FILE:_files' \
'--nats-port=[NATS client port]:NATS_PORT:_default' \
'--nats-monitor-port=[nats-server'\''s monitoring port (health, /connz, /jsz)]:NATS_MONITOR_PORT:_default' \
'--gateway-port=[The gateway'\''s port (the dashboard)]:GATEWAY_PORT:_default' \
'--lake-root=[The lake'\''s root \[default\: {home}/lake, or S3 (spm-lake'\''s S3_* settings) when S3_ENDPOINT is set\]]:DIR|s3://BUCKET/PREFIX:_default' \
'--wait=[How long to wait for every component to be healthy, in seconds]:WAIT:_default' \
'--home=[The stack'\''s folder\: state, logs (logs/<name>.log), the server'\''s store, the local lake]:HOME:_files' \
'-h[Print help]' \
'--help[Print help]' \
'*::files -- DBN files the source replays onto the bus:_files' \
&& ret=0
;;
(down)
_arguments "${_arguments_options[@]}" : \
'--home=[The stack'\''s folder\: state, logs (logs/<name>.log), the server'\''s store, the local lake]:HOME:_files' \
'-h[Print help]' \
'--help[Print help]' \
&& ret=0
;;
(status)
_arguments "${_arguments_options[@]}" : \
'--format=[]:FORMAT:(table json)' \
'--home=[The stack'\''s folder\: state, logs (logs/<name>.log), the server'\''s store, the local lake]:HOME:_files' \
'-h[Print help]' \
'--help[Print help]' \
&& ret=0
;;
(probe)
_arguments "${_arguments_options[@]}" : \
'--http=[GET this URL\: healthy when it answers 2xx]:URL:_default' \
'--monitor=[nats-server'\''s monitoring URL (http\://HOST\:8222)\: healthy when a client named --client is connected]:URL:_default' \
'--client=[The client'\''s connection name (each spm command names its connection after itself)]:NAME:_default' \
'--timeout=[Seconds to wait for an answer]:TIMEOUT:_default' \
'--home=[The stack'\''s folder\: state, logs (logs/<name>.log), the server'\''s store, the local lake]:HOME:_files' \
'-h[Print help]' \
'--help[Print help]' \
&& ret=0
;;
(supervise)
_arguments "${_arguments_options[@]}" : \
'--home=[The stack'\''s folder\: state, logs (logs/<name>.log), the server'\''s store, the local lake]:HOME:_files' \
'-h[Print help]' \
'--help[Print help]' \
&& ret=0
;;
(help)
_arguments "${_arguments_options[@]}" : \
":: :_spm-stack__subcmd__help_commands" \
"*::: :->help" \
&& ret=0

    case $state in
    (help)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:spm-stack-help-command-$line[1]:"
        case $line[1] in
            (up)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(down)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(status)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(probe)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(supervise)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(help)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
        esac
    ;;
esac
;;
        esac
    ;;
esac
}

(( $+functions[_spm-stack_commands] )) ||
_spm-stack_commands() {
    local commands; commands=(
'up:Start the stack (unless it runs already) and return once every component is healthy' \
'down:Stop everything the stack started, the lake flushing what it holds' \
'status:Each component'\''s process, health and key figures (exit 1 unless all are healthy)' \
'probe:Exit 0 when a component answers healthy\: an HTTP health page, or a client connected to nats-server (for container health checks)' \
'supervise:Run the supervisor in the foreground (\`up\` starts it detached)' \
'help:Print this message or the help of the given subcommand(s)' \
    )
    _describe -t commands 'spm-stack commands' commands "$@"
}
(( $+functions[_spm-stack__subcmd__down_commands] )) ||
_spm-stack__subcmd__down_commands() {
    local commands; commands=()
    _describe -t commands 'spm-stack down commands' commands "$@"
}
(( $+functions[_spm-stack__subcmd__help_commands] )) ||
_spm-stack__subcmd__help_commands() {
    local commands; commands=(
'up:Start the stack (unless it runs already) and return once every component is healthy' \
'down:Stop everything the stack started, the lake flushing what it holds' \
'status:Each component'\''s process, health and key figures (exit 1 unless all are healthy)' \
'probe:Exit 0 when a component answers healthy\: an HTTP health page, or a client connected to nats-server (for container health checks)' \
'supervise:Run the supervisor in the foreground (\`up\` starts it detached)' \
'help:Print this message or the help of the given subcommand(s)' \
    )
    _describe -t commands 'spm-stack help commands' commands "$@"
}
(( $+functions[_spm-stack__subcmd__help__subcmd__down_commands] )) ||
_spm-stack__subcmd__help__subcmd__down_commands() {
    local commands; commands=()
    _describe -t commands 'spm-stack help down commands' commands "$@"
}
(( $+functions[_spm-stack__subcmd__help__subcmd__help_commands] )) ||
_spm-stack__subcmd__help__subcmd__help_commands() {
    local commands; commands=()
    _describe -t commands 'spm-stack help help commands' commands "$@"
}
(( $+functions[_spm-stack__subcmd__help__subcmd__probe_commands] )) ||
_spm-stack__subcmd__help__subcmd__probe_commands() {
    local commands; commands=()
    _describe -t commands 'spm-stack help probe commands' commands "$@"
}
(( $+functions[_spm-stack__subcmd__help__subcmd__status_commands] )) ||
_spm-stack__subcmd__help__subcmd__status_commands() {
    local commands; commands=()
    _describe -t commands 'spm-stack help status commands' commands "$@"
}
(( $+functions[_spm-stack__subcmd__help__subcmd__supervise_commands] )) ||
_spm-stack__subcmd__help__subcmd__supervise_commands() {
    local commands; commands=()
    _describe -t commands 'spm-stack help supervise commands' commands "$@"
}
(( $+functions[_spm-stack__subcmd__help__subcmd__up_commands] )) ||
_spm-stack__subcmd__help__subcmd__up_commands() {
    local commands; commands=()
    _describe -t commands 'spm-stack help up commands' commands "$@"
}
(( $+functions[_spm-stack__subcmd__probe_commands] )) ||
_spm-stack__subcmd__probe_commands() {
    local commands; commands=()
    _describe -t commands 'spm-stack probe commands' commands "$@"
}
(( $+functions[_spm-stack__subcmd__status_commands] )) ||
_spm-stack__subcmd__status_commands() {
    local commands; commands=()
    _describe -t commands 'spm-stack status commands' commands "$@"
}
(( $+functions[_spm-stack__subcmd__supervise_commands] )) ||
_spm-stack__subcmd__supervise_commands() {
    local commands; commands=()
    _describe -t commands 'spm-stack supervise commands' commands "$@"
}
(( $+functions[_spm-stack__subcmd__up_commands] )) ||
_spm-stack__subcmd__up_commands() {
    local commands; commands=()
    _describe -t commands 'spm-stack up commands' commands "$@"
}

if [ "$funcstack[1]" = "_spm-stack" ]; then
    _spm-stack "$@"
else
    compdef _spm-stack spm-stack
fi

#compdef spm-tap

autoload -U is-at-least

_spm-tap() {
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
'-f+[Output format]:FORMAT:((json\:"One JSON line per message\: the bytes a pipe carries"
pretty\:"Indented JSON"
csv\:"Flattened CSV, a header row before the first row of each kind"
table\:"The levels view of \`levels.signals\` (other events print as JSON lines)"))' \
'--format=[Output format]:FORMAT:((json\:"One JSON line per message\: the bytes a pipe carries"
pretty\:"Indented JSON"
csv\:"Flattened CSV, a header row before the first row of each kind"
table\:"The levels view of \`levels.signals\` (other events print as JSON lines)"))' \
'-n+[Exit after this many messages]:N:_default' \
'--count=[Exit after this many messages]:N:_default' \
'--nats-url=[NATS server URL (\`nats\://\`, \`tls\://\`; \`user\:pass@\` or a token in the URL are honoured), or a comma-separated list of a cluster'\''s servers\: the client connects to any of them and reconnects to another when one goes away]:NATS_URL:_default' \
'--nats-creds=[NATS credentials file (JWT + NKey seed)]:FILE:_files' \
'--nats-token=[NATS authentication token]:NATS_TOKEN:_default' \
'--nats-user=[NATS user name (with \`--nats-password\`)]:NATS_USER:_default' \
'--nats-password=[NATS password]:NATS_PASSWORD:_default' \
'--nats-ca=[PEM file of root certificates to trust for TLS]:FILE:_files' \
'--nats-cert=[PEM client certificate for mutual TLS (with \`--nats-key\`)]:FILE:_files' \
'--nats-key=[PEM private key of the client certificate]:FILE:_files' \
'--nats-connect-wait=[How long to keep trying to reach the server at startup, in seconds]:SECS:_default' \
'--stream-storage=[Storage of streams this command creates]:STORAGE:(file memory)' \
'--stream-max-age=[Maximum age of messages in streams this command creates, in seconds]:SECS:_default' \
'--stream-duplicate-window=[Deduplication window (\`Nats-Msg-Id\`) of streams this command creates, in seconds]:SECS:_default' \
'--stream-max-bytes=[Maximum size of each stream this command creates, in bytes (-1\: unlimited)]:BYTES:_default' \
'--stream-persist-mode=[Persistence of the market-data stream this command creates (\`async\`\: acknowledged before the write, about 1.5 times faster; a hard kill of the server can lose the last messages, which a re-run replay publishes again). Signal and feed streams always use \`default\`]:PERSIST_MODE:((default\:"Acknowledge once the message is handed to the file store (the server'\''s default)"
async\:"Acknowledge before the write and group writes (R1 file streams)\: a hard kill of the server can lose the last acknowledged messages"))' \
'--stream-allow-batched=[Allow the fast-ingest batch protocol on streams this command creates (needed by \`spm-replay --output nats\` at full speed)]:BOOL:(true false)' \
'--stream-replicas=[Replicas of each stream this command creates (a cluster keeps each message on this many servers\: 3 survives the loss of any one; at most 5). Replicated streams persist in the server'\''s default mode whatever --stream-persist-mode says]:N:_default' \
'--from-start[Start with the retained history of the streams instead of new messages only]' \
'(--from-start)--stdin[Format NDJSON read from standard input instead of NATS]' \
'-h[Print help (see more with '\''--help'\'')]' \
'--help[Print help (see more with '\''--help'\'')]' \
'-V[Print version]' \
'--version[Print version]' \
'*::subjects -- Subjects to read, e.g. `levels.signals` or `market.>`:_default' \
&& ret=0
}

(( $+functions[_spm-tap_commands] )) ||
_spm-tap_commands() {
    local commands; commands=()
    _describe -t commands 'spm-tap commands' commands "$@"
}

if [ "$funcstack[1]" = "_spm-tap" ]; then
    _spm-tap "$@"
else
    compdef _spm-tap spm-tap
fi

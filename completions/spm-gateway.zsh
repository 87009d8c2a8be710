#compdef spm-gateway

autoload -U is-at-least

_spm-gateway() {
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
'--input=[Where payloads come from\: \`level_signals\` events on stdin (NDJSON or the binary framing), or the \`levels.signals\` subject on NATS \[default\: stdin when it is a pipe or a file, else nats\]]:INPUT:(stdin nats)' \
'--bind=[Address to listen on (127.0.0.1\: this machine only; 0.0.0.0 for every interface)]:BIND:_default' \
'--port=[Port to listen on (0\: any free port, printed at start)]:PORT:_default' \
'--token=[Bearer token required on every route but /health (\`Authorization\: Bearer …\`, or \`?token=…\` for browsers)]:TOKEN:_default' \
'*--allow-origin=[A browser origin allowed to open /ws/stream besides the gateway'\''s own (repeatable; \`*\` allows any)]:ORIGIN:_default' \
'--max-clients=[Most WebSocket clients at once; more are refused with 503]:MAX_CLIENTS:_default' \
'--client-queue=[Payloads a client'\''s queue holds; when full, the oldest gives way to the newest]:N:_default' \
'--stall-timeout=[Evict a client (close 1008) that has not read for this long\: a write that does not complete, or no pong to the pings]:SECS:_default' \
'--ping-interval=[Interval of the keep-alive pings (shorter than --stall-timeout)]:SECS:_default' \
'--stale-after=[/health answers 503 when no payload arrived for this long]:SECS:_default' \
'--history=[Event time of spot and calls kept for a dashboard opened mid-session]:SECS:_default' \
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
'-h[Print help (see more with '\''--help'\'')]' \
'--help[Print help (see more with '\''--help'\'')]' \
'-V[Print version]' \
'--version[Print version]' \
&& ret=0
}

(( $+functions[_spm-gateway_commands] )) ||
_spm-gateway_commands() {
    local commands; commands=()
    _describe -t commands 'spm-gateway commands' commands "$@"
}

if [ "$funcstack[1]" = "_spm-gateway" ]; then
    _spm-gateway "$@"
else
    compdef _spm-gateway spm-gateway
fi

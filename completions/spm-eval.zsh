#compdef spm-eval

autoload -U is-at-least

_spm-eval() {
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
'--input=[Where snaps come from \[default\: stdin when it is a pipe or a file, else NATS \`levels.signals\`, read until SIGINT/SIGTERM\]]:INPUT:(stdin nats)' \
'--count=[With NATS input\: stop after this many snaps]:N:_default' \
'--target=[\$ beyond (BREAK) or away from (REJECT) the level that makes a win]:$:_default' \
'--stop=[\$ through the level the other way that makes a loss]:$:_default' \
'--horizon=[Event time after the call within which the outcome must come\: \`120s\`, \`2m\`, \`90\`]:HORIZON:_default' \
'--touch-band=[How close spot must come to a level to count as a touch for the base rate \[default\: the engine'\''s \`touch_band\`, \$0.05\]]:$:_default' \
'--format=[Report format on stdout]:FORMAT:(table json csv)' \
'--calls=[Also write one row per call to this CSV file]:FILE.csv:_files' \
'--plot=[Also draw the session (spot, levels, calls) into this SVG file]:FILE.svg:_files' \
'*--sweep=[Tuning\: re-run the engine over FILES for each value of a physics constant (\`KEY=V1,V2,...\`; twice for a grid of two) and print the edge of each]:KEY=V1,V2,...:_default' \
'--config=[With --sweep\: TOML file of physics constants the sweep starts from]:FILE.toml:_files' \
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
'--from-start[With NATS input\: start from the retained history instead of new snaps]' \
'--strict[Stop at the first malformed input item (exit 1) instead of skipping it]' \
'-h[Print help (see more with '\''--help'\'')]' \
'--help[Print help (see more with '\''--help'\'')]' \
'-V[Print version]' \
'--version[Print version]' \
'*::files -- With --sweep\: DBN files (merged by event time, as spm-replay does), or `-` for market events on stdin:_files' \
&& ret=0
}

(( $+functions[_spm-eval_commands] )) ||
_spm-eval_commands() {
    local commands; commands=()
    _describe -t commands 'spm-eval commands' commands "$@"
}

if [ "$funcstack[1]" = "_spm-eval" ]; then
    _spm-eval "$@"
else
    compdef _spm-eval spm-eval
fi

#compdef spm-replay

autoload -U is-at-least

_spm-replay() {
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
'--speed=[0 = as fast as possible, 1 = real time, 2 = twice as fast]:SPEED:_default' \
'--start=[First event time to replay\: ISO-8601 (UTC unless an offset is given) or nanoseconds]:START:_default' \
'--end=[Event time to stop at (excluded)\: ISO-8601 or nanoseconds]:END:_default' \
'--output=[Where events go \[default\: stdout when stdout is a pipe or a file, else nats\]]:OUTPUT:(stdout nats)' \
'--format=[Pipe format on stdout]:FORMAT:((ndjson\:"One JSON object per line\: the contract"
bin\:"The compact binary framing of the same events (pipes only)"))' \
'--source=[The \`source\` field of every event]:SOURCE:_default' \
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
'--republish[On NATS, publish every event again even when the stream already holds this input (by default a re-run resumes after the last event of these files the stream holds)]' \
'-h[Print help (see more with '\''--help'\'')]' \
'--help[Print help (see more with '\''--help'\'')]' \
'-V[Print version]' \
'--version[Print version]' \
'*::files -- DBN files (.dbn or .dbn.zst), from any mix of datasets:_files' \
&& ret=0
}

(( $+functions[_spm-replay_commands] )) ||
_spm-replay_commands() {
    local commands; commands=()
    _describe -t commands 'spm-replay commands' commands "$@"
}

if [ "$funcstack[1]" = "_spm-replay" ]; then
    _spm-replay "$@"
else
    compdef _spm-replay spm-replay
fi

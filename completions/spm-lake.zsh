#compdef spm-lake

autoload -U is-at-least

_spm-lake() {
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
'--root=[The lake\: a local directory, or s3\://BUCKET/PREFIX (AWS S3, MinIO, any S3-compatible server; see --s3-*) \[default\: s3\://\$S3_BUCKET when a bucket is set, else ./lake\]. A local root with a bucket set is refused]:DIR|s3://BUCKET/PREFIX:_default' \
'--s3-endpoint=[S3 endpoint, e.g. http\://127.0.0.1\:9000 for a local MinIO (plain HTTP allowed) \[default\: AWS'\''s endpoint for the region\]]:URL:_default' \
'--s3-bucket=[S3 bucket\: without --root, the lake is at the bucket'\''s root; with an s3\:// root, it must be that root'\''s bucket]:BUCKET:_default' \
'--s3-access-key=[S3 access key id (needed for an s3\:// root)]:KEY:_default' \
'--s3-secret-key=[S3 secret access key (needed for an s3\:// root)]:SECRET:_default' \
'--s3-region=[S3 region (signs the requests; MinIO and moto accept any)]:S3_REGION:_default' \
'--input=[Where events come from\: stdin (NDJSON or the binary framing, detected), or NATS through durable consumers (MARKET_DATA → bronze, LEVEL_SIGNALS → gold, FEEDS → bronze \`feeds/status\`) \[default\: stdin when it is a pipe or a file, else NATS\]]:INPUT:(stdin nats)' \
'--bronze-consumer=[Durable consumer on MARKET_DATA (bronze)]:BRONZE_CONSUMER:_default' \
'--gold-consumer=[Durable consumer on LEVEL_SIGNALS (gold)]:GOLD_CONSUMER:_default' \
'--feeds-consumer=[Durable consumer on FEEDS (the live feeds'\'' status reports, bronze \`feeds/status\`)]:FEEDS_CONSUMER:_default' \
'--from-start=[A new consumer starts at the stream'\''s first message (false\: at new messages only). An existing consumer always resumes where it was acknowledged]:BOOL:(true false)' \
'--idle-exit=[Exit after this many seconds without an event (NATS input) instead of running until a signal]:SECS:_default' \
'--flush-rows=[Flush a batch at this many rows]:FLUSH_ROWS:_default' \
'--flush-secs=[Flush a batch open this many seconds (wall time). With several workers on one consumer, the messages of one that dies go to the others after twice this plus 10 s]:FLUSH_SECS:_default' \
'--zstd-level=[ZSTD level of the Parquet pages]:ZSTD_LEVEL:_default' \
'--row-group-rows=[Rows per Parquet row group]:ROW_GROUP_ROWS:_default' \
'--input-id=[Name of the piped input in object names \[default\: a hash of its first events\]]:INPUT_ID:_default' \
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
'--strict[Stop at the first malformed input item (exit 1) instead of skipping it]' \
'-h[Print help (see more with '\''--help'\'')]' \
'--help[Print help (see more with '\''--help'\'')]' \
'-V[Print version]' \
'--version[Print version]' \
":: :_spm-lake_commands" \
"*::: :->spm-lake" \
&& ret=0
    case $state in
    (spm-lake)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:spm-lake-command-$line[1]:"
        case $line[1] in
            (cat)
_arguments "${_arguments_options[@]}" : \
'*--table=[Tables to read (repeatable) \[default\: every bronze table\]]:TABLES:(futures/trades futures/mbp10 options/trades stocks/trades stocks/quotes levels/signals feeds/status)' \
'--date=[Only this UTC date (YYYY-MM-DD)]:DATE:_default' \
'--start=[From this event time (ns since the epoch, or ISO 8601)]:START:_default' \
'--end=[Before this event time]:END:_default' \
'--symbol=[Only this symbol (or underlying)]:SYMBOL:_default' \
'--layer=[Layer to read the market tables from]:LAYER:(bronze silver)' \
'--format=[Output format]:FORMAT:((ndjson\:"One JSON object per line\: the contract"
bin\:"The compact binary framing of the same events (pipes only)"))' \
'--root=[The lake\: a local directory, or s3\://BUCKET/PREFIX (AWS S3, MinIO, any S3-compatible server; see --s3-*) \[default\: s3\://\$S3_BUCKET when a bucket is set, else ./lake\]. A local root with a bucket set is refused]:DIR|s3://BUCKET/PREFIX:_default' \
'--s3-endpoint=[S3 endpoint, e.g. http\://127.0.0.1\:9000 for a local MinIO (plain HTTP allowed) \[default\: AWS'\''s endpoint for the region\]]:URL:_default' \
'--s3-bucket=[S3 bucket\: without --root, the lake is at the bucket'\''s root; with an s3\:// root, it must be that root'\''s bucket]:BUCKET:_default' \
'--s3-access-key=[S3 access key id (needed for an s3\:// root)]:KEY:_default' \
'--s3-secret-key=[S3 secret access key (needed for an s3\:// root)]:SECRET:_default' \
'--s3-region=[S3 region (signs the requests; MinIO and moto accept any)]:S3_REGION:_default' \
'-h[Print help (see more with '\''--help'\'')]' \
'--help[Print help (see more with '\''--help'\'')]' \
&& ret=0
;;
(ls)
_arguments "${_arguments_options[@]}" : \
'--format=[Output format]:FORMAT:(table json)' \
'--root=[The lake\: a local directory, or s3\://BUCKET/PREFIX (AWS S3, MinIO, any S3-compatible server; see --s3-*) \[default\: s3\://\$S3_BUCKET when a bucket is set, else ./lake\]. A local root with a bucket set is refused]:DIR|s3://BUCKET/PREFIX:_default' \
'--s3-endpoint=[S3 endpoint, e.g. http\://127.0.0.1\:9000 for a local MinIO (plain HTTP allowed) \[default\: AWS'\''s endpoint for the region\]]:URL:_default' \
'--s3-bucket=[S3 bucket\: without --root, the lake is at the bucket'\''s root; with an s3\:// root, it must be that root'\''s bucket]:BUCKET:_default' \
'--s3-access-key=[S3 access key id (needed for an s3\:// root)]:KEY:_default' \
'--s3-secret-key=[S3 secret access key (needed for an s3\:// root)]:SECRET:_default' \
'--s3-region=[S3 region (signs the requests; MinIO and moto accept any)]:S3_REGION:_default' \
'-h[Print help]' \
'--help[Print help]' \
&& ret=0
;;
(compact)
_arguments "${_arguments_options[@]}" : \
'--date=[The UTC date to compact (YYYY-MM-DD)]:DATE:_default' \
'*--table=[Market tables to compact (repeatable) \[default\: every bronze table\]]:TABLES:(futures/trades futures/mbp10 options/trades stocks/trades stocks/quotes levels/signals feeds/status)' \
'--zstd-level=[ZSTD level of the silver objects]:ZSTD_LEVEL:_default' \
'--row-group-rows=[Rows per Parquet row group]:ROW_GROUP_ROWS:_default' \
'--format=[Output format of the report]:FORMAT:(table json)' \
'--root=[The lake\: a local directory, or s3\://BUCKET/PREFIX (AWS S3, MinIO, any S3-compatible server; see --s3-*) \[default\: s3\://\$S3_BUCKET when a bucket is set, else ./lake\]. A local root with a bucket set is refused]:DIR|s3://BUCKET/PREFIX:_default' \
'--s3-endpoint=[S3 endpoint, e.g. http\://127.0.0.1\:9000 for a local MinIO (plain HTTP allowed) \[default\: AWS'\''s endpoint for the region\]]:URL:_default' \
'--s3-bucket=[S3 bucket\: without --root, the lake is at the bucket'\''s root; with an s3\:// root, it must be that root'\''s bucket]:BUCKET:_default' \
'--s3-access-key=[S3 access key id (needed for an s3\:// root)]:KEY:_default' \
'--s3-secret-key=[S3 secret access key (needed for an s3\:// root)]:SECRET:_default' \
'--s3-region=[S3 region (signs the requests; MinIO and moto accept any)]:S3_REGION:_default' \
'-h[Print help]' \
'--help[Print help]' \
&& ret=0
;;
(help)
_arguments "${_arguments_options[@]}" : \
":: :_spm-lake__subcmd__help_commands" \
"*::: :->help" \
&& ret=0

    case $state in
    (help)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:spm-lake-help-command-$line[1]:"
        case $line[1] in
            (cat)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(ls)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(compact)
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

(( $+functions[_spm-lake_commands] )) ||
_spm-lake_commands() {
    local commands; commands=(
'cat:Read tables back as canonical events on stdout, merged by event time' \
'ls:List tables, partitions, files, rows, bytes and time ranges' \
'compact:Build silver from bronze for a date\: deduplicated on event identity, sorted, one object per (table, partition, hour). Running it again with nothing new changes nothing' \
'help:Print this message or the help of the given subcommand(s)' \
    )
    _describe -t commands 'spm-lake commands' commands "$@"
}
(( $+functions[_spm-lake__subcmd__cat_commands] )) ||
_spm-lake__subcmd__cat_commands() {
    local commands; commands=()
    _describe -t commands 'spm-lake cat commands' commands "$@"
}
(( $+functions[_spm-lake__subcmd__compact_commands] )) ||
_spm-lake__subcmd__compact_commands() {
    local commands; commands=()
    _describe -t commands 'spm-lake compact commands' commands "$@"
}
(( $+functions[_spm-lake__subcmd__help_commands] )) ||
_spm-lake__subcmd__help_commands() {
    local commands; commands=(
'cat:Read tables back as canonical events on stdout, merged by event time' \
'ls:List tables, partitions, files, rows, bytes and time ranges' \
'compact:Build silver from bronze for a date\: deduplicated on event identity, sorted, one object per (table, partition, hour). Running it again with nothing new changes nothing' \
'help:Print this message or the help of the given subcommand(s)' \
    )
    _describe -t commands 'spm-lake help commands' commands "$@"
}
(( $+functions[_spm-lake__subcmd__help__subcmd__cat_commands] )) ||
_spm-lake__subcmd__help__subcmd__cat_commands() {
    local commands; commands=()
    _describe -t commands 'spm-lake help cat commands' commands "$@"
}
(( $+functions[_spm-lake__subcmd__help__subcmd__compact_commands] )) ||
_spm-lake__subcmd__help__subcmd__compact_commands() {
    local commands; commands=()
    _describe -t commands 'spm-lake help compact commands' commands "$@"
}
(( $+functions[_spm-lake__subcmd__help__subcmd__help_commands] )) ||
_spm-lake__subcmd__help__subcmd__help_commands() {
    local commands; commands=()
    _describe -t commands 'spm-lake help help commands' commands "$@"
}
(( $+functions[_spm-lake__subcmd__help__subcmd__ls_commands] )) ||
_spm-lake__subcmd__help__subcmd__ls_commands() {
    local commands; commands=()
    _describe -t commands 'spm-lake help ls commands' commands "$@"
}
(( $+functions[_spm-lake__subcmd__ls_commands] )) ||
_spm-lake__subcmd__ls_commands() {
    local commands; commands=()
    _describe -t commands 'spm-lake ls commands' commands "$@"
}

if [ "$funcstack[1]" = "_spm-lake" ]; then
    _spm-lake "$@"
else
    compdef _spm-lake spm-lake
fi

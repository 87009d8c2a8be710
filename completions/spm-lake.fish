# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_spm_lake_global_optspecs
    string join \n root= s3-endpoint= s3-bucket= s3-access-key= s3-secret-key= s3-region= input= bronze-consumer= gold-consumer= feeds-consumer= from-start= idle-exit= flush-rows= flush-secs= zstd-level= row-group-rows= input-id= strict nats-url= nats-creds= nats-token= nats-user= nats-password= nats-ca= nats-cert= nats-key= nats-connect-wait= stream-storage= stream-max-age= stream-duplicate-window= stream-max-bytes= stream-persist-mode= stream-allow-batched= stream-replicas= h/help V/version
end

function __fish_spm_lake_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_spm_lake_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_spm_lake_using_subcommand
    set -l cmd (__fish_spm_lake_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c spm-lake -n "__fish_spm_lake_needs_command" -l root -d 'The lake: a local directory, or s3://BUCKET/PREFIX (AWS S3, MinIO, any S3-compatible server; see --s3-*) [default: s3://$S3_BUCKET when a bucket is set, else ./lake]. A local root with a bucket set is refused' -r
complete -c spm-lake -n "__fish_spm_lake_needs_command" -l s3-endpoint -d 'S3 endpoint, e.g. http://127.0.0.1:9000 for a local MinIO (plain HTTP allowed) [default: AWS\'s endpoint for the region]' -r
complete -c spm-lake -n "__fish_spm_lake_needs_command" -l s3-bucket -d 'S3 bucket: without --root, the lake is at the bucket\'s root; with an s3:// root, it must be that root\'s bucket' -r
complete -c spm-lake -n "__fish_spm_lake_needs_command" -l s3-access-key -d 'S3 access key id (needed for an s3:// root)' -r
complete -c spm-lake -n "__fish_spm_lake_needs_command" -l s3-secret-key -d 'S3 secret access key (needed for an s3:// root)' -r
complete -c spm-lake -n "__fish_spm_lake_needs_command" -l s3-region -d 'S3 region (signs the requests; MinIO and moto accept any)' -r
complete -c spm-lake -n "__fish_spm_lake_needs_command" -l input -d 'Where events come from: stdin (NDJSON or the binary framing, detected), or NATS through durable consumers (MARKET_DATA → bronze, LEVEL_SIGNALS → gold, FEEDS → bronze `feeds/status`) [default: stdin when it is a pipe or a file, else NATS]' -r -f -a "stdin\t''
nats\t''"
complete -c spm-lake -n "__fish_spm_lake_needs_command" -l bronze-consumer -d 'Durable consumer on MARKET_DATA (bronze)' -r
complete -c spm-lake -n "__fish_spm_lake_needs_command" -l gold-consumer -d 'Durable consumer on LEVEL_SIGNALS (gold)' -r
complete -c spm-lake -n "__fish_spm_lake_needs_command" -l feeds-consumer -d 'Durable consumer on FEEDS (the live feeds\' status reports, bronze `feeds/status`)' -r
complete -c spm-lake -n "__fish_spm_lake_needs_command" -l from-start -d 'A new consumer starts at the stream\'s first message (false: at new messages only). An existing consumer always resumes where it was acknowledged' -r -f -a "true\t''
false\t''"
complete -c spm-lake -n "__fish_spm_lake_needs_command" -l idle-exit -d 'Exit after this many seconds without an event (NATS input) instead of running until a signal' -r
complete -c spm-lake -n "__fish_spm_lake_needs_command" -l flush-rows -d 'Flush a batch at this many rows' -r
complete -c spm-lake -n "__fish_spm_lake_needs_command" -l flush-secs -d 'Flush a batch open this many seconds (wall time). With several workers on one consumer, the messages of one that dies go to the others after twice this plus 10 s' -r
complete -c spm-lake -n "__fish_spm_lake_needs_command" -l zstd-level -d 'ZSTD level of the Parquet pages' -r
complete -c spm-lake -n "__fish_spm_lake_needs_command" -l row-group-rows -d 'Rows per Parquet row group' -r
complete -c spm-lake -n "__fish_spm_lake_needs_command" -l input-id -d 'Name of the piped input in object names [default: a hash of its first events]' -r
complete -c spm-lake -n "__fish_spm_lake_needs_command" -l nats-url -d 'NATS server URL (`nats://`, `tls://`; `user:pass@` or a token in the URL are honoured), or a comma-separated list of a cluster\'s servers: the client connects to any of them and reconnects to another when one goes away' -r
complete -c spm-lake -n "__fish_spm_lake_needs_command" -l nats-creds -d 'NATS credentials file (JWT + NKey seed)' -r -F
complete -c spm-lake -n "__fish_spm_lake_needs_command" -l nats-token -d 'NATS authentication token' -r
complete -c spm-lake -n "__fish_spm_lake_needs_command" -l nats-user -d 'NATS user name (with `--nats-password`)' -r
complete -c spm-lake -n "__fish_spm_lake_needs_command" -l nats-password -d 'NATS password' -r
complete -c spm-lake -n "__fish_spm_lake_needs_command" -l nats-ca -d 'PEM file of root certificates to trust for TLS' -r -F
complete -c spm-lake -n "__fish_spm_lake_needs_command" -l nats-cert -d 'PEM client certificate for mutual TLS (with `--nats-key`)' -r -F
complete -c spm-lake -n "__fish_spm_lake_needs_command" -l nats-key -d 'PEM private key of the client certificate' -r -F
complete -c spm-lake -n "__fish_spm_lake_needs_command" -l nats-connect-wait -d 'How long to keep trying to reach the server at startup, in seconds' -r
complete -c spm-lake -n "__fish_spm_lake_needs_command" -l stream-storage -d 'Storage of streams this command creates' -r -f -a "file\t''
memory\t''"
complete -c spm-lake -n "__fish_spm_lake_needs_command" -l stream-max-age -d 'Maximum age of messages in streams this command creates, in seconds' -r
complete -c spm-lake -n "__fish_spm_lake_needs_command" -l stream-duplicate-window -d 'Deduplication window (`Nats-Msg-Id`) of streams this command creates, in seconds' -r
complete -c spm-lake -n "__fish_spm_lake_needs_command" -l stream-max-bytes -d 'Maximum size of each stream this command creates, in bytes (-1: unlimited)' -r
complete -c spm-lake -n "__fish_spm_lake_needs_command" -l stream-persist-mode -d 'Persistence of the market-data stream this command creates (`async`: acknowledged before the write, about 1.5 times faster; a hard kill of the server can lose the last messages, which a re-run replay publishes again). Signal and feed streams always use `default`' -r -f -a "default\t'Acknowledge once the message is handed to the file store (the server\'s default)'
async\t'Acknowledge before the write and group writes (R1 file streams): a hard kill of the server can lose the last acknowledged messages'"
complete -c spm-lake -n "__fish_spm_lake_needs_command" -l stream-allow-batched -d 'Allow the fast-ingest batch protocol on streams this command creates (needed by `spm-replay --output nats` at full speed)' -r -f -a "true\t''
false\t''"
complete -c spm-lake -n "__fish_spm_lake_needs_command" -l stream-replicas -d 'Replicas of each stream this command creates (a cluster keeps each message on this many servers: 3 survives the loss of any one; at most 5). Replicated streams persist in the server\'s default mode whatever --stream-persist-mode says' -r
complete -c spm-lake -n "__fish_spm_lake_needs_command" -l strict -d 'Stop at the first malformed input item (exit 1) instead of skipping it'
complete -c spm-lake -n "__fish_spm_lake_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c spm-lake -n "__fish_spm_lake_needs_command" -s V -l version -d 'Print version'
complete -c spm-lake -n "__fish_spm_lake_needs_command" -f -a "cat" -d 'Read tables back as canonical events on stdout, merged by event time'
complete -c spm-lake -n "__fish_spm_lake_needs_command" -f -a "ls" -d 'List tables, partitions, files, rows, bytes and time ranges'
complete -c spm-lake -n "__fish_spm_lake_needs_command" -f -a "compact" -d 'Build silver from bronze for a date: deduplicated on event identity, sorted, one object per (table, partition, hour). Running it again with nothing new changes nothing'
complete -c spm-lake -n "__fish_spm_lake_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c spm-lake -n "__fish_spm_lake_using_subcommand cat" -l table -d 'Tables to read (repeatable) [default: every bronze table]' -r -f -a "futures/trades\t''
futures/mbp10\t''
options/trades\t''
stocks/trades\t''
stocks/quotes\t''
levels/signals\t''
feeds/status\t''"
complete -c spm-lake -n "__fish_spm_lake_using_subcommand cat" -l date -d 'Only this UTC date (YYYY-MM-DD)' -r
complete -c spm-lake -n "__fish_spm_lake_using_subcommand cat" -l start -d 'From this event time (ns since the epoch, or ISO 8601)' -r
complete -c spm-lake -n "__fish_spm_lake_using_subcommand cat" -l end -d 'Before this event time' -r
complete -c spm-lake -n "__fish_spm_lake_using_subcommand cat" -l symbol -d 'Only this symbol (or underlying)' -r
complete -c spm-lake -n "__fish_spm_lake_using_subcommand cat" -l layer -d 'Layer to read the market tables from' -r -f -a "bronze\t''
silver\t''"
complete -c spm-lake -n "__fish_spm_lake_using_subcommand cat" -l format -d 'Output format' -r -f -a "ndjson\t'One JSON object per line: the contract'
bin\t'The compact binary framing of the same events (pipes only)'"
complete -c spm-lake -n "__fish_spm_lake_using_subcommand cat" -l root -d 'The lake: a local directory, or s3://BUCKET/PREFIX (AWS S3, MinIO, any S3-compatible server; see --s3-*) [default: s3://$S3_BUCKET when a bucket is set, else ./lake]. A local root with a bucket set is refused' -r
complete -c spm-lake -n "__fish_spm_lake_using_subcommand cat" -l s3-endpoint -d 'S3 endpoint, e.g. http://127.0.0.1:9000 for a local MinIO (plain HTTP allowed) [default: AWS\'s endpoint for the region]' -r
complete -c spm-lake -n "__fish_spm_lake_using_subcommand cat" -l s3-bucket -d 'S3 bucket: without --root, the lake is at the bucket\'s root; with an s3:// root, it must be that root\'s bucket' -r
complete -c spm-lake -n "__fish_spm_lake_using_subcommand cat" -l s3-access-key -d 'S3 access key id (needed for an s3:// root)' -r
complete -c spm-lake -n "__fish_spm_lake_using_subcommand cat" -l s3-secret-key -d 'S3 secret access key (needed for an s3:// root)' -r
complete -c spm-lake -n "__fish_spm_lake_using_subcommand cat" -l s3-region -d 'S3 region (signs the requests; MinIO and moto accept any)' -r
complete -c spm-lake -n "__fish_spm_lake_using_subcommand cat" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c spm-lake -n "__fish_spm_lake_using_subcommand ls" -l format -d 'Output format' -r -f -a "table\t''
json\t''"
complete -c spm-lake -n "__fish_spm_lake_using_subcommand ls" -l root -d 'The lake: a local directory, or s3://BUCKET/PREFIX (AWS S3, MinIO, any S3-compatible server; see --s3-*) [default: s3://$S3_BUCKET when a bucket is set, else ./lake]. A local root with a bucket set is refused' -r
complete -c spm-lake -n "__fish_spm_lake_using_subcommand ls" -l s3-endpoint -d 'S3 endpoint, e.g. http://127.0.0.1:9000 for a local MinIO (plain HTTP allowed) [default: AWS\'s endpoint for the region]' -r
complete -c spm-lake -n "__fish_spm_lake_using_subcommand ls" -l s3-bucket -d 'S3 bucket: without --root, the lake is at the bucket\'s root; with an s3:// root, it must be that root\'s bucket' -r
complete -c spm-lake -n "__fish_spm_lake_using_subcommand ls" -l s3-access-key -d 'S3 access key id (needed for an s3:// root)' -r
complete -c spm-lake -n "__fish_spm_lake_using_subcommand ls" -l s3-secret-key -d 'S3 secret access key (needed for an s3:// root)' -r
complete -c spm-lake -n "__fish_spm_lake_using_subcommand ls" -l s3-region -d 'S3 region (signs the requests; MinIO and moto accept any)' -r
complete -c spm-lake -n "__fish_spm_lake_using_subcommand ls" -s h -l help -d 'Print help'
complete -c spm-lake -n "__fish_spm_lake_using_subcommand compact" -l date -d 'The UTC date to compact (YYYY-MM-DD)' -r
complete -c spm-lake -n "__fish_spm_lake_using_subcommand compact" -l table -d 'Market tables to compact (repeatable) [default: every bronze table]' -r -f -a "futures/trades\t''
futures/mbp10\t''
options/trades\t''
stocks/trades\t''
stocks/quotes\t''
levels/signals\t''
feeds/status\t''"
complete -c spm-lake -n "__fish_spm_lake_using_subcommand compact" -l zstd-level -d 'ZSTD level of the silver objects' -r
complete -c spm-lake -n "__fish_spm_lake_using_subcommand compact" -l row-group-rows -d 'Rows per Parquet row group' -r
complete -c spm-lake -n "__fish_spm_lake_using_subcommand compact" -l format -d 'Output format of the report' -r -f -a "table\t''
json\t''"
complete -c spm-lake -n "__fish_spm_lake_using_subcommand compact" -l root -d 'The lake: a local directory, or s3://BUCKET/PREFIX (AWS S3, MinIO, any S3-compatible server; see --s3-*) [default: s3://$S3_BUCKET when a bucket is set, else ./lake]. A local root with a bucket set is refused' -r
complete -c spm-lake -n "__fish_spm_lake_using_subcommand compact" -l s3-endpoint -d 'S3 endpoint, e.g. http://127.0.0.1:9000 for a local MinIO (plain HTTP allowed) [default: AWS\'s endpoint for the region]' -r
complete -c spm-lake -n "__fish_spm_lake_using_subcommand compact" -l s3-bucket -d 'S3 bucket: without --root, the lake is at the bucket\'s root; with an s3:// root, it must be that root\'s bucket' -r
complete -c spm-lake -n "__fish_spm_lake_using_subcommand compact" -l s3-access-key -d 'S3 access key id (needed for an s3:// root)' -r
complete -c spm-lake -n "__fish_spm_lake_using_subcommand compact" -l s3-secret-key -d 'S3 secret access key (needed for an s3:// root)' -r
complete -c spm-lake -n "__fish_spm_lake_using_subcommand compact" -l s3-region -d 'S3 region (signs the requests; MinIO and moto accept any)' -r
complete -c spm-lake -n "__fish_spm_lake_using_subcommand compact" -s h -l help -d 'Print help'
complete -c spm-lake -n "__fish_spm_lake_using_subcommand help; and not __fish_seen_subcommand_from cat ls compact help" -f -a "cat" -d 'Read tables back as canonical events on stdout, merged by event time'
complete -c spm-lake -n "__fish_spm_lake_using_subcommand help; and not __fish_seen_subcommand_from cat ls compact help" -f -a "ls" -d 'List tables, partitions, files, rows, bytes and time ranges'
complete -c spm-lake -n "__fish_spm_lake_using_subcommand help; and not __fish_seen_subcommand_from cat ls compact help" -f -a "compact" -d 'Build silver from bronze for a date: deduplicated on event identity, sorted, one object per (table, partition, hour). Running it again with nothing new changes nothing'
complete -c spm-lake -n "__fish_spm_lake_using_subcommand help; and not __fish_seen_subcommand_from cat ls compact help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'

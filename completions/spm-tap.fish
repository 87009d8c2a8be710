complete -c spm-tap -s f -l format -d 'Output format' -r -f -a "json\t'One JSON line per message: the bytes a pipe carries'
pretty\t'Indented JSON'
csv\t'Flattened CSV, a header row before the first row of each kind'
table\t'The levels view of `levels.signals` (other events print as JSON lines)'"
complete -c spm-tap -s n -l count -d 'Exit after this many messages' -r
complete -c spm-tap -l nats-url -d 'NATS server URL (`nats://`, `tls://`; `user:pass@` or a token in the URL are honoured), or a comma-separated list of a cluster\'s servers: the client connects to any of them and reconnects to another when one goes away' -r
complete -c spm-tap -l nats-creds -d 'NATS credentials file (JWT + NKey seed)' -r -F
complete -c spm-tap -l nats-token -d 'NATS authentication token' -r
complete -c spm-tap -l nats-user -d 'NATS user name (with `--nats-password`)' -r
complete -c spm-tap -l nats-password -d 'NATS password' -r
complete -c spm-tap -l nats-ca -d 'PEM file of root certificates to trust for TLS' -r -F
complete -c spm-tap -l nats-cert -d 'PEM client certificate for mutual TLS (with `--nats-key`)' -r -F
complete -c spm-tap -l nats-key -d 'PEM private key of the client certificate' -r -F
complete -c spm-tap -l nats-connect-wait -d 'How long to keep trying to reach the server at startup, in seconds' -r
complete -c spm-tap -l stream-storage -d 'Storage of streams this command creates' -r -f -a "file\t''
memory\t''"
complete -c spm-tap -l stream-max-age -d 'Maximum age of messages in streams this command creates, in seconds' -r
complete -c spm-tap -l stream-duplicate-window -d 'Deduplication window (`Nats-Msg-Id`) of streams this command creates, in seconds' -r
complete -c spm-tap -l stream-max-bytes -d 'Maximum size of each stream this command creates, in bytes (-1: unlimited)' -r
complete -c spm-tap -l stream-persist-mode -d 'Persistence of the market-data stream this command creates (`async`: acknowledged before the write, about 1.5 times faster; a hard kill of the server can lose the last messages, which a re-run replay publishes again). Signal and feed streams always use `default`' -r -f -a "default\t'Acknowledge once the message is handed to the file store (the server\'s default)'
async\t'Acknowledge before the write and group writes (R1 file streams): a hard kill of the server can lose the last acknowledged messages'"
complete -c spm-tap -l stream-allow-batched -d 'Allow the fast-ingest batch protocol on streams this command creates (needed by `spm-replay --output nats` at full speed)' -r -f -a "true\t''
false\t''"
complete -c spm-tap -l stream-replicas -d 'Replicas of each stream this command creates (a cluster keeps each message on this many servers: 3 survives the loss of any one; at most 5). Replicated streams persist in the server\'s default mode whatever --stream-persist-mode says' -r
complete -c spm-tap -l from-start -d 'Start with the retained history of the streams instead of new messages only'
complete -c spm-tap -l stdin -d 'Format NDJSON read from standard input instead of NATS'
complete -c spm-tap -s h -l help -d 'Print help (see more with \'--help\')'
complete -c spm-tap -s V -l version -d 'Print version'

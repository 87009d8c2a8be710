complete -c spm-replay -l speed -d '0 = as fast as possible, 1 = real time, 2 = twice as fast' -r
complete -c spm-replay -l start -d 'First event time to replay: ISO-8601 (UTC unless an offset is given) or nanoseconds' -r
complete -c spm-replay -l end -d 'Event time to stop at (excluded): ISO-8601 or nanoseconds' -r
complete -c spm-replay -l output -d 'Where events go [default: stdout when stdout is a pipe or a file, else nats]' -r -f -a "stdout\t''
nats\t''"
complete -c spm-replay -l format -d 'Pipe format on stdout' -r -f -a "ndjson\t'One JSON object per line: the contract'
bin\t'The compact binary framing of the same events (pipes only)'"
complete -c spm-replay -l source -d 'The `source` field of every event' -r
complete -c spm-replay -l nats-url -d 'NATS server URL (`nats://`, `tls://`; `user:pass@` or a token in the URL are honoured), or a comma-separated list of a cluster\'s servers: the client connects to any of them and reconnects to another when one goes away' -r
complete -c spm-replay -l nats-creds -d 'NATS credentials file (JWT + NKey seed)' -r -F
complete -c spm-replay -l nats-token -d 'NATS authentication token' -r
complete -c spm-replay -l nats-user -d 'NATS user name (with `--nats-password`)' -r
complete -c spm-replay -l nats-password -d 'NATS password' -r
complete -c spm-replay -l nats-ca -d 'PEM file of root certificates to trust for TLS' -r -F
complete -c spm-replay -l nats-cert -d 'PEM client certificate for mutual TLS (with `--nats-key`)' -r -F
complete -c spm-replay -l nats-key -d 'PEM private key of the client certificate' -r -F
complete -c spm-replay -l nats-connect-wait -d 'How long to keep trying to reach the server at startup, in seconds' -r
complete -c spm-replay -l stream-storage -d 'Storage of streams this command creates' -r -f -a "file\t''
memory\t''"
complete -c spm-replay -l stream-max-age -d 'Maximum age of messages in streams this command creates, in seconds' -r
complete -c spm-replay -l stream-duplicate-window -d 'Deduplication window (`Nats-Msg-Id`) of streams this command creates, in seconds' -r
complete -c spm-replay -l stream-max-bytes -d 'Maximum size of each stream this command creates, in bytes (-1: unlimited)' -r
complete -c spm-replay -l stream-persist-mode -d 'Persistence of the market-data stream this command creates (`async`: acknowledged before the write, about 1.5 times faster; a hard kill of the server can lose the last messages, which a re-run replay publishes again). Signal and feed streams always use `default`' -r -f -a "default\t'Acknowledge once the message is handed to the file store (the server\'s default)'
async\t'Acknowledge before the write and group writes (R1 file streams): a hard kill of the server can lose the last acknowledged messages'"
complete -c spm-replay -l stream-allow-batched -d 'Allow the fast-ingest batch protocol on streams this command creates (needed by `spm-replay --output nats` at full speed)' -r -f -a "true\t''
false\t''"
complete -c spm-replay -l stream-replicas -d 'Replicas of each stream this command creates (a cluster keeps each message on this many servers: 3 survives the loss of any one; at most 5). Replicated streams persist in the server\'s default mode whatever --stream-persist-mode says' -r
complete -c spm-replay -l republish -d 'On NATS, publish every event again even when the stream already holds this input (by default a re-run resumes after the last event of these files the stream holds)'
complete -c spm-replay -s h -l help -d 'Print help (see more with \'--help\')'
complete -c spm-replay -s V -l version -d 'Print version'

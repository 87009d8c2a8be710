complete -c spm-replay -l speed -d '0 = as fast as possible, 1 = real time, 2 = twice as fast' -r
complete -c spm-replay -l start -d 'First event time to replay: ISO-8601 (UTC unless an offset is given) or nanoseconds' -r
complete -c spm-replay -l end -d 'Event time to stop at (excluded): ISO-8601 or nanoseconds' -r
complete -c spm-replay -l output -d 'Where events go [default: stdout when stdout is a pipe or a file, else nats]' -r -f -a "stdout\t''
nats\t''"
complete -c spm-replay -l format -d 'Pipe format on stdout' -r -f -a "ndjson\t'One JSON object per line: the contract'
bin\t'The compact binary framing of the same events (pipes only)'"
complete -c spm-replay -l source -d 'The `source` field of every event' -r
complete -c spm-replay -l nats-url -d 'NATS server URL (`nats://`, `tls://`; `user:pass@` or a token in the URL are honoured)' -r
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
complete -c spm-replay -s h -l help -d 'Print help (see more with \'--help\')'
complete -c spm-replay -s V -l version -d 'Print version'

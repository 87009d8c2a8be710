complete -c spm-core -l input -d 'Where events come from [default: stdin when it is a pipe or a file, else NATS `market.>`]' -r -f -a "stdin\t''
nats\t''"
complete -c spm-core -l clock -d 'Snap on event time only, or also on the wall clock when the market is quiet' -r -f -a "event\t'Only event time (replays, pipes): deterministic'
wall\t'Also a wall-clock timer when the market is quiet (live use)'"
complete -c spm-core -l config -d 'TOML file overriding physics constants' -r -F
complete -c spm-core -l hotzone -d 'Extra levels to watch (SPY prices, comma separated)' -r
complete -c spm-core -l futures-symbol -d 'Futures contract to follow (default: the most traded outright contract)' -r
complete -c spm-core -l nats-url -d 'NATS server URL (`nats://`, `tls://`; `user:pass@` or a token in the URL are honoured), or a comma-separated list of a cluster\'s servers: the client connects to any of them and reconnects to another when one goes away' -r
complete -c spm-core -l nats-creds -d 'NATS credentials file (JWT + NKey seed)' -r -F
complete -c spm-core -l nats-token -d 'NATS authentication token' -r
complete -c spm-core -l nats-user -d 'NATS user name (with `--nats-password`)' -r
complete -c spm-core -l nats-password -d 'NATS password' -r
complete -c spm-core -l nats-ca -d 'PEM file of root certificates to trust for TLS' -r -F
complete -c spm-core -l nats-cert -d 'PEM client certificate for mutual TLS (with `--nats-key`)' -r -F
complete -c spm-core -l nats-key -d 'PEM private key of the client certificate' -r -F
complete -c spm-core -l nats-connect-wait -d 'How long to keep trying to reach the server at startup, in seconds' -r
complete -c spm-core -l stream-storage -d 'Storage of streams this command creates' -r -f -a "file\t''
memory\t''"
complete -c spm-core -l stream-max-age -d 'Maximum age of messages in streams this command creates, in seconds' -r
complete -c spm-core -l stream-duplicate-window -d 'Deduplication window (`Nats-Msg-Id`) of streams this command creates, in seconds' -r
complete -c spm-core -l stream-max-bytes -d 'Maximum size of each stream this command creates, in bytes (-1: unlimited)' -r
complete -c spm-core -l stream-persist-mode -d 'Persistence of the market-data stream this command creates (`async`: acknowledged before the write, about 1.5 times faster; a hard kill of the server can lose the last messages, which a re-run replay publishes again). Signal and feed streams always use `default`' -r -f -a "default\t'Acknowledge once the message is handed to the file store (the server\'s default)'
async\t'Acknowledge before the write and group writes (R1 file streams): a hard kill of the server can lose the last acknowledged messages'"
complete -c spm-core -l stream-allow-batched -d 'Allow the fast-ingest batch protocol on streams this command creates (needed by `spm-replay --output nats` at full speed)' -r -f -a "true\t''
false\t''"
complete -c spm-core -l stream-replicas -d 'Replicas of each stream this command creates (a cluster keeps each message on this many servers: 3 survives the loss of any one; at most 5). Replicated streams persist in the server\'s default mode whatever --stream-persist-mode says' -r
complete -c spm-core -l stdout -d 'Write snaps as NDJSON to stdout instead of NATS `levels.signals`'
complete -c spm-core -l from-start -d 'With NATS input: start from the retained history instead of new messages'
complete -c spm-core -l print-config -d 'Print the effective configuration as TOML and exit'
complete -c spm-core -l strict -d 'Stop at the first malformed input item (exit 1) instead of skipping it'
complete -c spm-core -s h -l help -d 'Print help (see more with \'--help\')'
complete -c spm-core -s V -l version -d 'Print version'

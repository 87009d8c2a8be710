# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_spm_lake_global_optspecs
    string join \n root= input= flush-rows= flush-secs= zstd-level= row-group-rows= input-id= strict h/help V/version
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

complete -c spm-lake -n "__fish_spm_lake_needs_command" -l root -d 'The lake: a local directory' -r
complete -c spm-lake -n "__fish_spm_lake_needs_command" -l input -d 'Where events come from (stdin: NDJSON or the binary framing, detected)' -r -f -a "stdin\t''"
complete -c spm-lake -n "__fish_spm_lake_needs_command" -l flush-rows -d 'Flush a batch at this many rows' -r
complete -c spm-lake -n "__fish_spm_lake_needs_command" -l flush-secs -d 'Flush a batch open this many seconds (wall time)' -r
complete -c spm-lake -n "__fish_spm_lake_needs_command" -l zstd-level -d 'ZSTD level of the Parquet pages' -r
complete -c spm-lake -n "__fish_spm_lake_needs_command" -l row-group-rows -d 'Rows per Parquet row group' -r
complete -c spm-lake -n "__fish_spm_lake_needs_command" -l input-id -d 'Name of the piped input in object names [default: a hash of its first events]' -r
complete -c spm-lake -n "__fish_spm_lake_needs_command" -l strict -d 'Stop at the first malformed input item (exit 1) instead of skipping it'
complete -c spm-lake -n "__fish_spm_lake_needs_command" -s h -l help -d 'Print help'
complete -c spm-lake -n "__fish_spm_lake_needs_command" -s V -l version -d 'Print version'
complete -c spm-lake -n "__fish_spm_lake_needs_command" -f -a "cat" -d 'Read tables back as canonical events on stdout, merged by event time'
complete -c spm-lake -n "__fish_spm_lake_needs_command" -f -a "ls" -d 'List tables, partitions, files, rows, bytes and time ranges'
complete -c spm-lake -n "__fish_spm_lake_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c spm-lake -n "__fish_spm_lake_using_subcommand cat" -l table -d 'Tables to read (repeatable) [default: every bronze table]' -r -f -a "futures/trades\t''
futures/mbp10\t''
options/trades\t''
stocks/trades\t''
stocks/quotes\t''
levels/signals\t''"
complete -c spm-lake -n "__fish_spm_lake_using_subcommand cat" -l date -d 'Only this UTC date (YYYY-MM-DD)' -r
complete -c spm-lake -n "__fish_spm_lake_using_subcommand cat" -l start -d 'From this event time (ns since the epoch, or ISO 8601)' -r
complete -c spm-lake -n "__fish_spm_lake_using_subcommand cat" -l end -d 'Before this event time' -r
complete -c spm-lake -n "__fish_spm_lake_using_subcommand cat" -l symbol -d 'Only this symbol (or underlying)' -r
complete -c spm-lake -n "__fish_spm_lake_using_subcommand cat" -l layer -d 'Layer to read the market tables from' -r -f -a "bronze\t''
silver\t''"
complete -c spm-lake -n "__fish_spm_lake_using_subcommand cat" -l format -d 'Output format' -r -f -a "ndjson\t'One JSON object per line: the contract'
bin\t'The compact binary framing of the same events (pipes only)'"
complete -c spm-lake -n "__fish_spm_lake_using_subcommand cat" -l root -d 'The lake: a local directory' -r
complete -c spm-lake -n "__fish_spm_lake_using_subcommand cat" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c spm-lake -n "__fish_spm_lake_using_subcommand ls" -l format -d 'Output format' -r -f -a "table\t''
json\t''"
complete -c spm-lake -n "__fish_spm_lake_using_subcommand ls" -l root -d 'The lake: a local directory' -r
complete -c spm-lake -n "__fish_spm_lake_using_subcommand ls" -s h -l help -d 'Print help'
complete -c spm-lake -n "__fish_spm_lake_using_subcommand help; and not __fish_seen_subcommand_from cat ls help" -f -a "cat" -d 'Read tables back as canonical events on stdout, merged by event time'
complete -c spm-lake -n "__fish_spm_lake_using_subcommand help; and not __fish_seen_subcommand_from cat ls help" -f -a "ls" -d 'List tables, partitions, files, rows, bytes and time ranges'
complete -c spm-lake -n "__fish_spm_lake_using_subcommand help; and not __fish_seen_subcommand_from cat ls help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'

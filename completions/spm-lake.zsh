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
'--root=[The lake\: a local directory]:ROOT:_default' \
'--input=[Where events come from (stdin\: NDJSON or the binary framing, detected)]:INPUT:(stdin)' \
'--flush-rows=[Flush a batch at this many rows]:FLUSH_ROWS:_default' \
'--flush-secs=[Flush a batch open this many seconds (wall time)]:FLUSH_SECS:_default' \
'--zstd-level=[ZSTD level of the Parquet pages]:ZSTD_LEVEL:_default' \
'--row-group-rows=[Rows per Parquet row group]:ROW_GROUP_ROWS:_default' \
'--input-id=[Name of the piped input in object names \[default\: a hash of its first events\]]:INPUT_ID:_default' \
'--strict[Stop at the first malformed input item (exit 1) instead of skipping it]' \
'-h[Print help]' \
'--help[Print help]' \
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
'*--table=[Tables to read (repeatable) \[default\: every bronze table\]]:TABLES:(futures/trades futures/mbp10 options/trades stocks/trades stocks/quotes levels/signals)' \
'--date=[Only this UTC date (YYYY-MM-DD)]:DATE:_default' \
'--start=[From this event time (ns since the epoch, or ISO 8601)]:START:_default' \
'--end=[Before this event time]:END:_default' \
'--symbol=[Only this symbol (or underlying)]:SYMBOL:_default' \
'--layer=[Layer to read the market tables from]:LAYER:(bronze silver)' \
'--format=[Output format]:FORMAT:((ndjson\:"One JSON object per line\: the contract"
bin\:"The compact binary framing of the same events (pipes only)"))' \
'--root=[The lake\: a local directory]:ROOT:_default' \
'-h[Print help (see more with '\''--help'\'')]' \
'--help[Print help (see more with '\''--help'\'')]' \
&& ret=0
;;
(ls)
_arguments "${_arguments_options[@]}" : \
'--format=[Output format]:FORMAT:(table json)' \
'--root=[The lake\: a local directory]:ROOT:_default' \
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
'help:Print this message or the help of the given subcommand(s)' \
    )
    _describe -t commands 'spm-lake commands' commands "$@"
}
(( $+functions[_spm-lake__subcmd__cat_commands] )) ||
_spm-lake__subcmd__cat_commands() {
    local commands; commands=()
    _describe -t commands 'spm-lake cat commands' commands "$@"
}
(( $+functions[_spm-lake__subcmd__help_commands] )) ||
_spm-lake__subcmd__help_commands() {
    local commands; commands=(
'cat:Read tables back as canonical events on stdout, merged by event time' \
'ls:List tables, partitions, files, rows, bytes and time ranges' \
'help:Print this message or the help of the given subcommand(s)' \
    )
    _describe -t commands 'spm-lake help commands' commands "$@"
}
(( $+functions[_spm-lake__subcmd__help__subcmd__cat_commands] )) ||
_spm-lake__subcmd__help__subcmd__cat_commands() {
    local commands; commands=()
    _describe -t commands 'spm-lake help cat commands' commands "$@"
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

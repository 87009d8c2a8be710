#compdef spm-synth

autoload -U is-at-least

_spm-synth() {
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
'--seed=[Seed of every random stream (same seed and arguments → byte-identical files)]:SEED:_default' \
'--date=[Session date (YYYY-MM-DD, ET)]:DATE:_default' \
'--start=[Session start, ET time of day (HH\:MM\[\:SS\])]:START:_default' \
'--duration=[Session length\: HH\:MM\:SS, MM\:SS, or seconds]:DURATION:_default' \
'--scenario=[Scenario script (TOML); its \[session\] settings apply unless overridden by flags]:SCENARIO:_files' \
'-o+[Output directory]:OUT_DIR:_files' \
'--out-dir=[Output directory]:OUT_DIR:_files' \
'--es-symbol=[ES contract symbol]:ES_SYMBOL:_default' \
'--es-start=[ES price at the start]:ES_START:_default' \
'--event-rate=[Mean ES book events per second (quiet regime, mid-day)]:EVENT_RATE:_default' \
'--busy-multiplier=[Rate multiplier of the busy regime]:BUSY_MULTIPLIER:_default' \
'--volatility=[Annualised volatility of the ES fair price]:VOLATILITY:_default' \
'--atm-vol=[At-the-money implied volatility of the options]:ATM_VOL:_default' \
'--option-rate=[Background 0DTE option trades per second]:OPTION_RATE:_default' \
'--spy-rate=[SPY trades per second (0\: no SPY file)]:SPY_RATE:_default' \
'--spy-basis=[SPY − ES/10 basis in dollars]:SPY_BASIS:_default' \
'--strike-range=[Strikes listed from spot − range to spot + range dollars]:STRIKE_RANGE:_default' \
'--depth-scale=[Scale of resting ES depth per level]:DEPTH_SCALE:_default' \
'--trade-share=[Share of ES book events that are market orders]:TRADE_SHARE:_default' \
'--zstd-level=[zstd level (1-22)]:ZSTD_LEVEL:_default' \
'--no-zstd[Write plain .dbn files]' \
'-h[Print help]' \
'--help[Print help]' \
'-V[Print version]' \
'--version[Print version]' \
&& ret=0
}

(( $+functions[_spm-synth_commands] )) ||
_spm-synth_commands() {
    local commands; commands=()
    _describe -t commands 'spm-synth commands' commands "$@"
}

if [ "$funcstack[1]" = "_spm-synth" ]; then
    _spm-synth "$@"
else
    compdef _spm-synth spm-synth
fi

complete -c spm-synth -l seed -d 'Seed of every random stream (same seed and arguments → byte-identical files)' -r
complete -c spm-synth -l date -d 'Session date (YYYY-MM-DD, ET)' -r
complete -c spm-synth -l start -d 'Session start, ET time of day (HH:MM[:SS])' -r
complete -c spm-synth -l duration -d 'Session length: HH:MM:SS, MM:SS, or seconds' -r
complete -c spm-synth -l scenario -d 'Scenario script (TOML); its [session] settings apply unless overridden by flags' -r -F
complete -c spm-synth -s o -l out-dir -d 'Output directory' -r -F
complete -c spm-synth -l es-symbol -d 'ES contract symbol' -r
complete -c spm-synth -l es-start -d 'ES price at the start' -r
complete -c spm-synth -l event-rate -d 'Mean ES book events per second (quiet regime, mid-day)' -r
complete -c spm-synth -l busy-multiplier -d 'Rate multiplier of the busy regime' -r
complete -c spm-synth -l volatility -d 'Annualised volatility of the ES fair price' -r
complete -c spm-synth -l atm-vol -d 'At-the-money implied volatility of the options' -r
complete -c spm-synth -l option-rate -d 'Background 0DTE option trades per second' -r
complete -c spm-synth -l spy-rate -d 'SPY trades per second (0: no SPY file)' -r
complete -c spm-synth -l spy-basis -d 'SPY − ES/10 basis in dollars' -r
complete -c spm-synth -l strike-range -d 'Strikes listed from spot − range to spot + range dollars' -r
complete -c spm-synth -l depth-scale -d 'Scale of resting ES depth per level' -r
complete -c spm-synth -l trade-share -d 'Share of ES book events that are market orders' -r
complete -c spm-synth -l zstd-level -d 'zstd level (1-22)' -r
complete -c spm-synth -l no-zstd -d 'Write plain .dbn files'
complete -c spm-synth -s h -l help -d 'Print help'
complete -c spm-synth -s V -l version -d 'Print version'

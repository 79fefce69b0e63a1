"""The approval gate: dangerous calls wait for a person (state machine, store, channels, stage)."""

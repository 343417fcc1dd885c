"""Jobs: what one console command does, as plain functions of its parsed arguments (no argument parsing here)."""

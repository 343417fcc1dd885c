"""The process a job runs in: CPU threads, bf16 support, the memory allocator, leaving a multi-process job."""

"""The training engine: one training loop (training), the strategies as one table dispatched in one place
(finetune, with strategies and peft_configs for their `prepare` functions) and the metrics it reports."""

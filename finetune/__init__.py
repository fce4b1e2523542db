"""Fine-tuning: data builders from dialogue logs and the SFT training script (issue #6); CTR training (#5)."""

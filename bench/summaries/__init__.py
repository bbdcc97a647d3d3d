"""What each benchmark aims at and how its results read: the figures summed up and rendered as its
committed Markdown summary (bench/NAME.md). The benchmark modules beside bench/ measure; harness.py
holds what the summaries share."""

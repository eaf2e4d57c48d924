"""The exe-unit: ExeScript batches over GSB, run in the local provider's sandbox."""

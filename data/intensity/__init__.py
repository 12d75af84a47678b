"""Carbon-intensity readers, validation, resampling and the validated frame."""

"""Carbon intensities: the readers, validation, resampling, the validated frame
(:mod:`.frame`) and where they come from (:mod:`.source`: the one source interface,
docs/sources.md)."""

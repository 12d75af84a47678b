"""Live intensities: :class:`~greenepoch.data.live.source.LiveSource` asks the providers
in fallback order, archives every answer, and falls back on the archive (marked stale)
and, when allowed, the synthetic default, recording each zone's
:class:`~greenepoch.data.live.source.Provenance`."""

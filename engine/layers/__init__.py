"""The RF chain layer and the builds of its weight matrix (exact, FFT, compiled)."""

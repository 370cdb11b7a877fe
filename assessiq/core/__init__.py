"""The core: identity and invites, the shared document and its store, the integrity log,
policy and score. It imports nothing from aiortc, NiceGUI, mediapipe or zeroconf."""

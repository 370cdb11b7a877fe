"""The interview room without its views: the page controllers (`host`, `candidate`), the
problems, the call plan and camera check, the report and the replay. Nothing here imports
NiceGUI; `assessiq.ui` renders these."""

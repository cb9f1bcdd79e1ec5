"""The Jobs tab: photos or a zip → findings, report and exports, run in the background and resumable."""

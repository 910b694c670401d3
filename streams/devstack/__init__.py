"""The embedded broker and the dev stack (`ticktide broker`, `ticktide dev`)."""

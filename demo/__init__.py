"""The demos: they drive the whole platform through its HTTP API like any client, so they sit above every
domain package (`ggzy demo`, `ggzy demo --seed-only`, `ggzy demo --url`, `ggzy rehearsal`)."""

"""Storage foundations: database, migrations, object store, job queue, clock."""

//! Event storage in PostgreSQL schema `events` (owned by this service alone).

use std::collections::BTreeMap;

use micro_common::postgres::Migration;

use crate::message::Event;

/// The schema this service owns.
pub const SCHEMA: &str = "events";

/// Schema migrations, applied in order at start-up by common's `migrate`
/// (recorded in `events.schema_migrations`, serialised across replicas).
pub const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "page_events",
    sql: "CREATE TABLE IF NOT EXISTS events.page_events (
         id          bigserial PRIMARY KEY,
         -- producer-chosen id: a redelivered message is not stored twice
         -- (NULLs never conflict, so messages without an id are always stored)
         message_id  text UNIQUE,
         kind        text NOT NULL,
         url         text NOT NULL,
         recorded_at timestamptz NOT NULL DEFAULT now()
     );
     CREATE INDEX IF NOT EXISTS page_events_url ON events.page_events (url);",
}];

/// The table tests lock to hold an insert in flight.
pub const EVENTS_TABLE: &str = "events.page_events";

/// Stores one event and commits. Returns false when an event with the same
/// message id was already stored.
///
/// An explicit transaction matters: if this process dies while the INSERT
/// waits (e.g. on a lock), the server never sees COMMIT and rolls back,
/// instead of finishing an autocommit statement for a client that is gone
/// (the message is then redelivered from the processing list).
pub async fn insert(
    client: &mut tokio_postgres::Client,
    event: &Event,
) -> Result<bool, tokio_postgres::Error> {
    let tx = client.transaction().await?;
    let rows = tx
        .execute(
            "INSERT INTO events.page_events (message_id, kind, url) VALUES ($1, $2, $3)
             ON CONFLICT (message_id) DO NOTHING",
            &[&event.id, &event.kind, &event.url],
        )
        .await?;
    tx.commit().await?;
    Ok(rows == 1)
}

/// Number of stored events per URL.
pub async fn summary(
    client: &tokio_postgres::Client,
) -> Result<BTreeMap<String, i64>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT url, count(*) FROM events.page_events GROUP BY url",
            &[],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

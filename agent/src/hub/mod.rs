//! The road between a phone and this desktop through a NATS hub (docs/hub.md): no inbound port
//! here, the agent connects out. Jobs go into the agent's JetStream work queue (they wait there
//! while the desktop sleeps), events and state come back on its subjects and KV bucket, files
//! through its object store, and the rest of the phone's API through [`api`]. [`users`] writes
//! the hub's accounts entries that keep each phone to its own agent.

pub mod api;
pub mod users;

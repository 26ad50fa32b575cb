//! The GameServer as the Agones SDK server's REST gateway shows it
//! (`GET /gameserver`, each line of `GET /watch/gameserver`): only the fields
//! this server reads. The gateway writes proto field names (`object_meta`) and
//! 64-bit integers as strings (`"count": "3"`); both spellings of a name and
//! both forms of a number are accepted, so a gateway configured otherwise
//! still parses.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};

/// A GameServer's lifecycle state (Agones `GameServerState`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum State {
    /// Before the pod runs: port allocation, creating, starting, scheduled.
    #[default]
    Starting,
    /// `Ready` was called; the controller has not moved it to `Ready` yet.
    RequestReady,
    /// In the fleet's pool, waiting to be allocated.
    Ready,
    /// Held back from allocation for a while (`Reserve`).
    Reserved,
    /// Handed to a match or a matchmaker.
    Allocated,
    /// Going away: `Shutdown` was called or the GameServer is being removed.
    Shutdown,
    /// Failed health checks.
    Unhealthy,
    /// Could not be created.
    Error,
    /// A state this server does not know (a newer Agones).
    Other(String),
}

impl State {
    /// The state named by the API's string.
    pub fn parse(s: &str) -> State {
        match s {
            "" | "PortAllocation" | "Creating" | "Starting" | "Scheduled" => State::Starting,
            "RequestReady" => State::RequestReady,
            "Ready" => State::Ready,
            "Reserved" => State::Reserved,
            "Allocated" => State::Allocated,
            "Shutdown" => State::Shutdown,
            "Unhealthy" => State::Unhealthy,
            "Error" => State::Error,
            other => State::Other(other.to_string()),
        }
    }

    /// The name used in logs and `/healthz`.
    pub fn name(&self) -> &str {
        match self {
            State::Starting => "Starting",
            State::RequestReady => "RequestReady",
            State::Ready => "Ready",
            State::Reserved => "Reserved",
            State::Allocated => "Allocated",
            State::Shutdown => "Shutdown",
            State::Unhealthy => "Unhealthy",
            State::Error => "Error",
            State::Other(s) => s,
        }
    }
}

impl<'de> Deserialize<'de> for State {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<State, D::Error> {
        Ok(State::parse(&String::deserialize(d)?))
    }
}

/// A GameServer: its metadata and status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct GameServer {
    /// Name, labels, annotations, deletion.
    #[serde(default, alias = "objectMeta")]
    pub object_meta: ObjectMeta,
    /// State, address, ports, counters.
    #[serde(default)]
    pub status: Status,
}

impl GameServer {
    /// Whether the GameServer is going away: deleted (its deletion timestamp
    /// is set) or in the `Shutdown` state. Either way the server drains.
    pub fn is_going_away(&self) -> bool {
        self.object_meta.deletion_timestamp > 0 || self.status.state == State::Shutdown
    }

    /// The count and capacity Agones holds for counter `key`, if it is declared.
    pub fn counter(&self, key: &str) -> Option<CounterStatus> {
        self.status.counters.get(key).copied()
    }
}

/// Kubernetes object metadata.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct ObjectMeta {
    /// The GameServer's name (`fleet-abcde-xyz12`).
    #[serde(default)]
    pub name: String,
    /// Its namespace.
    #[serde(default)]
    pub namespace: String,
    /// Unix seconds at which deletion was requested; 0 = not deleted.
    #[serde(default, alias = "deletionTimestamp", deserialize_with = "int64")]
    pub deletion_timestamp: i64,
    /// Labels (SDK-set ones start with `agones.dev/sdk-`).
    #[serde(default, deserialize_with = "map_or_null")]
    pub labels: BTreeMap<String, String>,
    /// Annotations (SDK-set ones start with `agones.dev/sdk-`).
    #[serde(default, deserialize_with = "map_or_null")]
    pub annotations: BTreeMap<String, String>,
}

/// The GameServer's status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Status {
    /// Lifecycle state.
    #[serde(default)]
    pub state: State,
    /// The node's address clients connect to.
    #[serde(default)]
    pub address: String,
    /// The ports Agones opened, with the host port clients use.
    #[serde(default, deserialize_with = "vec_or_null")]
    pub ports: Vec<Port>,
    /// Counters declared in the GameServer's spec.
    #[serde(default, deserialize_with = "map_or_null")]
    pub counters: BTreeMap<String, CounterStatus>,
}

/// An exposed port.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Port {
    /// The port's name in the spec.
    #[serde(default)]
    pub name: String,
    /// The port clients connect to.
    #[serde(default, deserialize_with = "int64")]
    pub port: i64,
}

/// A counter's value as Agones holds it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub struct CounterStatus {
    /// Current count.
    #[serde(default, deserialize_with = "int64")]
    pub count: i64,
    /// Capacity.
    #[serde(default, deserialize_with = "int64")]
    pub capacity: i64,
}

/// One line of the watch stream: `{"result": GameServer}` or `{"error": …}`.
#[derive(Debug, Deserialize)]
pub(crate) struct WatchLine {
    pub result: Option<GameServer>,
    pub error: Option<serde_json::Value>,
}

/// A proto JSON int64: a string of digits, a number, or null (= 0).
fn int64<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Int {
        Num(i64),
        Text(String),
        Null(()),
    }
    match Int::deserialize(d)? {
        Int::Num(n) => Ok(n),
        Int::Text(s) if s.is_empty() => Ok(0),
        Int::Text(s) => s.parse().map_err(serde::de::Error::custom),
        Int::Null(()) => Ok(0),
    }
}

fn map_or_null<'de, D, V>(d: D) -> Result<BTreeMap<String, V>, D::Error>
where
    D: Deserializer<'de>,
    V: Deserialize<'de>,
{
    Ok(Option::deserialize(d)?.unwrap_or_default())
}

fn vec_or_null<'de, D, V>(d: D) -> Result<Vec<V>, D::Error>
where
    D: Deserializer<'de>,
    V: Deserialize<'de>,
{
    Ok(Option::deserialize(d)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_rest_shape_parses() {
        let line = r#"{"result":{"object_meta":{"name":"gs-1","namespace":"default","uid":"1234",
            "resource_version":"v1","generation":"1","creation_timestamp":"1533766607",
            "annotations":{"annotation":"true"},"labels":{"islocal":"true"}},
            "status":{"state":"Allocated","address":"10.0.0.7","ports":[{"name":"game","port":7042}],
            "counters":{"rooms":{"count":"2","capacity":"64"}}}}}"#;
        let gs = serde_json::from_str::<WatchLine>(line)
            .expect("parses")
            .result
            .expect("a result");
        assert_eq!(gs.object_meta.name, "gs-1");
        assert_eq!(gs.status.state, State::Allocated);
        assert_eq!(gs.status.ports[0].port, 7042);
        assert_eq!(
            gs.counter("rooms"),
            Some(CounterStatus {
                count: 2,
                capacity: 64
            })
        );
        assert_eq!(gs.counter("players"), None);
        assert!(!gs.is_going_away());
    }

    #[test]
    fn camel_case_numbers_and_nulls_parse_too() {
        let gs: GameServer = serde_json::from_str(
            r#"{"objectMeta":{"name":"x","deletionTimestamp":1700000000,"labels":null},
                "status":{"state":"Ready","ports":null,"counters":{"players":{"count":3,"capacity":null}}}}"#,
        )
        .expect("parses");
        assert!(gs.is_going_away());
        assert_eq!(gs.status.state, State::Ready);
        assert_eq!(
            gs.counter("players").map(|c| (c.count, c.capacity)),
            Some((3, 0))
        );
        let empty: GameServer = serde_json::from_str("{}").expect("parses");
        assert_eq!(empty.status.state, State::Starting);
    }

    #[test]
    fn states_parse_and_shutdown_means_going_away() {
        for (s, name) in [
            ("Scheduled", "Starting"),
            ("RequestReady", "RequestReady"),
            ("Reserved", "Reserved"),
            ("Unhealthy", "Unhealthy"),
            ("Drained", "Drained"),
        ] {
            assert_eq!(State::parse(s).name(), name);
        }
        let gs: GameServer =
            serde_json::from_str(r#"{"status":{"state":"Shutdown"}}"#).expect("parses");
        assert!(gs.is_going_away());
        assert!(
            serde_json::from_str::<GameServer>(r#"{"status":{"ports":[{"port":"x"}]}}"#).is_err()
        );
    }
}

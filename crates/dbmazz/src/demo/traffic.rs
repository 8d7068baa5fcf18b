//! The demo's traffic generator: a steady mix of inserts, updates (with unchanged TOAST values
//! and key changes) and deletes against the e-commerce tables, at `rate` operations per second.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::schema::BIG_NOTE_SQL;

/// What the generator did so far (read by the progress line and the monitor).
#[derive(Debug, Default)]
pub struct TrafficStats {
    ops: AtomicU64,
    errors: AtomicU64,
    last_op: Mutex<String>,
}

impl TrafficStats {
    pub fn ops(&self) -> u64 {
        self.ops.load(Ordering::Relaxed)
    }

    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    pub fn last_op(&self) -> String {
        self.last_op
            .lock()
            .map(|last| last.clone())
            .unwrap_or_default()
    }

    fn record(&self, op: String) {
        self.ops.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut last) = self.last_op.lock() {
            *last = op;
        }
    }
}

/// `ops | ops/s | last op`, from two readings `elapsed` apart.
pub fn progress_line(stats: &TrafficStats, previous_ops: u64, elapsed: Duration) -> String {
    let ops = stats.ops();
    let rate = (ops - previous_ops.min(ops)) as f64 / elapsed.as_secs_f64().max(0.001);
    let errors = match stats.errors() {
        0 => String::new(),
        n => format!(" | {n} errors"),
    };
    format!(
        "traffic: {ops} ops | {rate:.1} ops/s | last: {}{errors}",
        stats.last_op()
    )
}

/// Runs until `stop` turns true. Statement errors are counted and skipped (a demo keeps
/// going); a lost connection ends the generator with the error.
pub async fn run(
    client: tokio_postgres::Client,
    rate: f64,
    first_order_id: u64,
    mut stop: watch::Receiver<bool>,
    stats: Arc<TrafficStats>,
) -> Result<(), tokio_postgres::Error> {
    let rate = rate.max(0.1);
    // Rates above 100/s run several operations per 10 ms tick.
    let (tick, per_tick) = if rate <= 100.0 {
        (Duration::from_secs_f64(1.0 / rate), 1)
    } else {
        (Duration::from_millis(10), (rate / 100.0).round() as u32)
    };
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut max_order = first_order_id.max(1);
    let started = Instant::now();
    loop {
        tokio::select! {
            _ = stop.changed() => return Ok(()),
            _ = interval.tick() => {}
        }
        if *stop.borrow() {
            return Ok(());
        }
        for _ in 0..per_tick {
            let op = Op::pick(fastrand::u32(0..100));
            let target = fastrand::u64(1..=max_order);
            let sql = op.sql(target);
            match client.batch_execute(&sql).await {
                Ok(()) => {
                    if op == Op::NewOrder {
                        max_order += 1;
                    }
                    stats.record(op.describe(target, started.elapsed()));
                }
                Err(error) if error.is_closed() => return Err(error),
                Err(error) => {
                    stats.errors.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(%error, op = ?op, "demo traffic: statement failed");
                }
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    NewOrder,
    AdvanceStatus,
    ChangeQuantity,
    MoveItemLine,
    RenumberOrder,
    DeleteOrder,
    UpdateCustomer,
    Reprice,
}

impl Op {
    /// The mix, by percentile.
    fn pick(roll: u32) -> Op {
        match roll {
            0..=29 => Op::NewOrder,
            30..=54 => Op::AdvanceStatus,
            55..=66 => Op::ChangeQuantity,
            67..=74 => Op::MoveItemLine,
            75..=76 => Op::RenumberOrder,
            77..=86 => Op::DeleteOrder,
            87..=93 => Op::UpdateCustomer,
            _ => Op::Reprice,
        }
    }

    /// One statement batch (one implicit transaction). Only generated numbers are formatted
    /// into the SQL.
    fn sql(self, target: u64) -> String {
        let customer = fastrand::u64(1..=500);
        let product = fastrand::u32(1..=200);
        let cents = fastrand::u32(1000..100_000);
        match self {
            Op::NewOrder => {
                let lines = fastrand::u32(1..=4);
                let note = if fastrand::u32(0..10) == 0 {
                    BIG_NOTE_SQL
                } else {
                    "NULL"
                };
                format!(
                    "WITH o AS (INSERT INTO orders (id, customer_id, status, total, notes) \
                     VALUES (nextval('order_ids'), {customer}, 'new', {cents} / 100.0, {note}) RETURNING id) \
                     INSERT INTO order_items (order_id, line_no, product_id, qty, unit_price, attrs) \
                     SELECT o.id, l, 1 + ({product} + l) % 200, 1 + l % 3, round(({cents} % 9000 + 100) / 100.0, 2), \
                     jsonb_build_object('gift', l = 2, 'source', 'traffic', 'line', l) \
                     FROM o, generate_series(1, {lines}) l"
                )
            }
            Op::AdvanceStatus => format!(
                "UPDATE orders SET status = CASE status WHEN 'new' THEN 'paid' WHEN 'paid' THEN 'shipped' \
                 ELSE 'delivered' END, updated_at = now() \
                 WHERE id = (SELECT id FROM orders WHERE id >= {target} ORDER BY id LIMIT 1)"
            ),
            Op::ChangeQuantity => format!(
                "UPDATE order_items SET qty = qty + 1 WHERE (order_id, line_no) = \
                 (SELECT order_id, line_no FROM order_items WHERE order_id >= {target} \
                  ORDER BY order_id, line_no LIMIT 1)"
            ),
            Op::MoveItemLine => format!(
                "UPDATE order_items i SET line_no = m.next FROM \
                 (SELECT order_id, line_no, (SELECT max(line_no) + 1 FROM order_items x \
                   WHERE x.order_id = t.order_id) AS next \
                  FROM order_items t WHERE order_id >= {target} ORDER BY order_id, line_no LIMIT 1) m \
                 WHERE i.order_id = m.order_id AND i.line_no = m.line_no"
            ),
            // A primary key change of a row whose TOASTed notes stay unchanged (DESIGN §3).
            Op::RenumberOrder => format!(
                "WITH victim AS (SELECT id FROM orders WHERE id >= {target} ORDER BY id LIMIT 1), \
                 moved AS (UPDATE orders SET id = nextval('order_ids'), updated_at = now() \
                   WHERE id IN (SELECT id FROM victim) RETURNING id) \
                 UPDATE order_items SET order_id = (SELECT id FROM moved) \
                 WHERE order_id IN (SELECT id FROM victim) AND EXISTS (SELECT 1 FROM moved)"
            ),
            Op::DeleteOrder => format!(
                "WITH victim AS (SELECT id FROM orders WHERE id >= {target} ORDER BY id LIMIT 1), \
                 items AS (DELETE FROM order_items WHERE order_id IN (SELECT id FROM victim)) \
                 DELETE FROM orders WHERE id IN (SELECT id FROM victim)"
            ),
            Op::UpdateCustomer => format!(
                "UPDATE customers SET email = 'c{customer}.' || {cents} || '@example.org', \
                 city = (ARRAY['Lisbon','Berlin','Lima','Osaka','Austin','Nairobi'])[1 + {cents} % 6] \
                 WHERE id = {customer}"
            ),
            Op::Reprice => format!(
                "UPDATE products SET price = {cents} / 100.0, stock = stock + 1, \
                 attrs = jsonb_set(coalesce(attrs, '{{}}'), '{{repriced}}', to_jsonb({cents})) \
                 WHERE id = {product}"
            ),
        }
    }

    fn describe(self, target: u64, at: Duration) -> String {
        let what = match self {
            Op::NewOrder => "insert order + items".to_string(),
            Op::AdvanceStatus => format!("update order ≥{target} status (notes unchanged)"),
            Op::ChangeQuantity => format!("update item qty of order ≥{target}"),
            Op::MoveItemLine => format!("update item key (line_no) of order ≥{target}"),
            Op::RenumberOrder => format!("update order ≥{target} key (id)"),
            Op::DeleteOrder => format!("delete order ≥{target} + items"),
            Op::UpdateCustomer => "update customer".to_string(),
            Op::Reprice => "update product price/attrs".to_string(),
        };
        format!("{what} @{:.0}s", at.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mix_covers_every_operation() {
        let ops: std::collections::HashSet<_> = (0..100)
            .map(|roll| format!("{:?}", Op::pick(roll)))
            .collect();
        assert_eq!(ops.len(), 8, "{ops:?}");
    }

    #[test]
    fn progress_line_shows_ops_rate_and_last_op() {
        let stats = TrafficStats::default();
        for _ in 0..20 {
            stats.record("insert order + items @1s".into());
        }
        let line = progress_line(&stats, 10, Duration::from_secs(2));
        assert_eq!(
            line,
            "traffic: 20 ops | 5.0 ops/s | last: insert order + items @1s"
        );
    }
}

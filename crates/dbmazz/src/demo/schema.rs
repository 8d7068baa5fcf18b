//! The demo's e-commerce database: four tables with the types that matter (jsonb, numeric,
//! timestamptz, a large TOASTed text) and a seed of a couple of thousand orders.

/// The demo's tables, in dependency order, with their key columns (for row comparison).
pub const TABLES: [DemoTable; 4] = [
    DemoTable {
        name: "customers",
        key: &["id"],
        columns: &["id", "name", "email", "city", "created_at"],
    },
    DemoTable {
        name: "products",
        key: &["id"],
        columns: &["id", "name", "price", "attrs", "stock"],
    },
    DemoTable {
        name: "orders",
        key: &["id"],
        columns: &[
            "id",
            "customer_id",
            "status",
            "total",
            "created_at",
            "updated_at",
            "notes",
        ],
    },
    DemoTable {
        name: "order_items",
        key: &["order_id", "line_no"],
        columns: &[
            "order_id",
            "line_no",
            "product_id",
            "qty",
            "unit_price",
            "attrs",
        ],
    },
];

#[derive(Debug, Clone, Copy)]
pub struct DemoTable {
    pub name: &'static str,
    pub key: &'static [&'static str],
    pub columns: &'static [&'static str],
}

impl DemoTable {
    pub fn qualified(&self) -> String {
        format!("public.{}", self.name)
    }
}

/// Tables, publication and a seed. `notes` is stored out of line (EXTERNAL) and filled with
/// incompressible text on some orders, so status updates leave an unchanged TOAST value.
pub const SCHEMA_SQL: &str = "
CREATE TABLE customers (
    id bigint PRIMARY KEY,
    name text NOT NULL,
    email text NOT NULL,
    city text,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE products (
    id int PRIMARY KEY,
    name text NOT NULL,
    price numeric(10,2) NOT NULL,
    attrs jsonb,
    stock int NOT NULL
);
CREATE TABLE orders (
    id bigint PRIMARY KEY,
    customer_id bigint NOT NULL,
    status text NOT NULL,
    total numeric(12,2) NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    notes text
);
ALTER TABLE orders ALTER COLUMN notes SET STORAGE EXTERNAL;
CREATE TABLE order_items (
    order_id bigint NOT NULL,
    line_no int NOT NULL,
    product_id int NOT NULL,
    qty int NOT NULL,
    unit_price numeric(10,2) NOT NULL,
    attrs jsonb,
    PRIMARY KEY (order_id, line_no)
);
CREATE SEQUENCE order_ids START 1;
";

/// A couple of thousand orders and ~5,000 items (2.5 per order on average).
pub fn seed_sql(orders: u32) -> String {
    format!(
        "
INSERT INTO customers (id, name, email, city, created_at)
SELECT g, 'Customer ' || g, 'customer' || g || '@example.com',
       (ARRAY['Lisbon','Berlin','Lima','Osaka','Austin','Nairobi'])[1 + g % 6],
       now() - (g || ' minutes')::interval
FROM generate_series(1, 500) g;

INSERT INTO products (id, name, price, attrs, stock)
SELECT g, 'Product ' || g, round((5 + random() * 495)::numeric, 2),
       jsonb_build_object('color', (ARRAY['red','green','blue','black'])[1 + g % 4],
                          'tags', jsonb_build_array('demo', 'p' || g), 'weight_g', 100 + g),
       (random() * 1000)::int
FROM generate_series(1, 200) g;

INSERT INTO orders (id, customer_id, status, total, created_at, updated_at, notes)
SELECT nextval('order_ids'), 1 + (g * 7) % 500,
       (ARRAY['new','paid','shipped','delivered'])[1 + g % 4],
       round((10 + random() * 990)::numeric, 2),
       now() - (g || ' seconds')::interval, now(),
       CASE WHEN g % 10 = 0 THEN {big_note} END
FROM generate_series(1, {orders}) g;

INSERT INTO order_items (order_id, line_no, product_id, qty, unit_price, attrs)
SELECT o.id, l, 1 + (o.id * 13 + l) % 200, 1 + (o.id + l) % 5,
       round((5 + random() * 95)::numeric, 2),
       jsonb_build_object('gift', (o.id + l) % 7 = 0, 'source', 'seed')
FROM orders o, generate_series(1, 1 + (o.id % 4)::int) l;
",
        big_note = BIG_NOTE_SQL,
    )
}

/// ~8 KiB of incompressible text: stays out of line in the TOAST table.
pub const BIG_NOTE_SQL: &str =
    "(SELECT string_agg(md5(random()::text), '') FROM generate_series(1, 256))";

/// Creates the publication (dbmazz would too; the demo shows the statement).
pub fn publication_sql(publication: &str) -> String {
    let tables = TABLES
        .iter()
        .map(|table| table.qualified())
        .collect::<Vec<_>>()
        .join(", ");
    format!("CREATE PUBLICATION {publication} FOR TABLE {tables};")
}

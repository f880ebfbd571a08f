//! Links the release binaries with the supervisor's hot code first (berth-link-order,
//! symbol-order.txt).

fn main() {
    berth_link_order::apply("symbol-order.txt");
}

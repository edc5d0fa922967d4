//! The browser half: hydrates the server-rendered HTML with the same `App`.

// Leptos view types nest deeply in release builds (components are not type-erased there).
#![recursion_limit = "256"]

#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(app::App);
}

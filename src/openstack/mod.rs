//! Clients that mirror the OpenStack APIs: one module per service.

//! What every micro service needs: configuration, discovery, server start-up, telemetry, shutdown.

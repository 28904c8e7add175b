//! Embedded mock servers of the Zephyr Scale Cloud v2 and qTest Manager v3 APIs.

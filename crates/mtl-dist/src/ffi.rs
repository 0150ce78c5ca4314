//! The C surface of `csrc/c10d_shim.cpp`.

use std::ffi::{c_char, c_int, c_long, c_void};

extern "C" {
    pub fn mtl_c10d_free_error(err: *mut c_char);
    pub fn mtl_c10d_new(
        addr: *const c_char,
        port: c_int,
        rank: c_int,
        world: c_int,
        timeout_ms: c_long,
        err: *mut *mut c_char,
    ) -> *mut c_void;
    pub fn mtl_c10d_free(group: *mut c_void);
    pub fn mtl_c10d_all_reduce(
        group: *mut c_void,
        tensor: *mut c_void,
        op: c_int,
        err: *mut *mut c_char,
    ) -> bool;
    pub fn mtl_c10d_broadcast(
        group: *mut c_void,
        tensor: *mut c_void,
        root: c_int,
        err: *mut *mut c_char,
    ) -> bool;
    pub fn mtl_c10d_all_gather(
        group: *mut c_void,
        outputs: *mut *mut c_void,
        n: c_int,
        input: *mut c_void,
        err: *mut *mut c_char,
    ) -> bool;
    pub fn mtl_c10d_barrier(group: *mut c_void, err: *mut *mut c_char) -> bool;
}

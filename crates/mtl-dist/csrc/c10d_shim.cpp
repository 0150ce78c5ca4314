// A C surface over libtorch's own c10d (TCPStore rendezvous + ProcessGroupGloo) for
// the Rust crate `mtl-dist`. `tch` binds none of c10d (tch-rs issue #936).
//
// Tensors cross as `at::Tensor*`, which is what tch's raw tensor pointer is. Every
// function catches C++ exceptions and returns them as a malloc'd message in `*err`
// (freed by `mtl_c10d_free_error`): an exception must never unwind into Rust.

#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

namespace {

struct Group {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> pg;
  std::chrono::milliseconds timeout;
};

char* copy_message(const char* what) {
  size_t n = std::strlen(what);
  char* out = static_cast<char*>(std::malloc(n + 1));
  if (out != nullptr) {
    std::memcpy(out, what, n + 1);
  }
  return out;
}

// Runs `body`; on an exception stores its message in `*err` and returns false.
template <typename F>
bool guarded(char** err, F&& body) {
  *err = nullptr;
  try {
    body();
    return true;
  } catch (const c10::Error& e) {
    *err = copy_message(e.what_without_backtrace());
  } catch (const std::exception& e) {
    *err = copy_message(e.what());
  } catch (...) {
    *err = copy_message("unknown C++ exception in c10d");
  }
  return false;
}

void wait(const c10::intrusive_ptr<c10d::Work>& work, const Group* g) {
  work->wait(g->timeout);
}

}  // namespace

extern "C" {

void mtl_c10d_free_error(char* err) { std::free(err); }

// Rendezvous at addr:port (rank 0 hosts the store) and a Gloo group over it.
void* mtl_c10d_new(const char* addr, int port, int rank, int world, long timeout_ms,
                   char** err) {
  Group* out = nullptr;
  guarded(err, [&] {
    auto timeout = std::chrono::milliseconds(timeout_ms);
    c10d::TCPStoreOptions o;
    o.port = static_cast<std::uint16_t>(port);
    o.isServer = rank == 0;
    o.numWorkers = world;
    o.timeout = timeout;
    auto store = c10::make_intrusive<c10d::TCPStore>(std::string(addr), o);
    auto opts = c10d::ProcessGroupGloo::Options::create(timeout);
    opts->devices.push_back(
        c10d::ProcessGroupGloo::createDeviceForHostname(std::string(addr)));
    auto pg = c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, world, opts);
    out = new Group{store, pg, timeout};
  });
  return out;
}

void mtl_c10d_free(void* group) { delete static_cast<Group*>(group); }

// In-place sum (op 0), max (1) or min (2) of one tensor across the ranks.
bool mtl_c10d_all_reduce(void* group, void* tensor, int op, char** err) {
  return guarded(err, [&] {
    auto* g = static_cast<Group*>(group);
    std::vector<at::Tensor> ts{*static_cast<at::Tensor*>(tensor)};
    c10d::AllreduceOptions opts;
    opts.reduceOp = op == 1   ? c10d::ReduceOp(c10d::ReduceOp::MAX)
                    : op == 2 ? c10d::ReduceOp(c10d::ReduceOp::MIN)
                              : c10d::ReduceOp(c10d::ReduceOp::SUM);
    opts.timeout = g->timeout;
    wait(g->pg->allreduce(ts, opts), g);
  });
}

// In-place broadcast of one tensor from `root`.
bool mtl_c10d_broadcast(void* group, void* tensor, int root, char** err) {
  return guarded(err, [&] {
    auto* g = static_cast<Group*>(group);
    std::vector<at::Tensor> ts{*static_cast<at::Tensor*>(tensor)};
    c10d::BroadcastOptions opts;
    opts.rootRank = root;
    opts.timeout = g->timeout;
    wait(g->pg->broadcast(ts, opts), g);
  });
}

// Gathers `input` from every rank into `outputs[0..world]` (same shape and dtype).
bool mtl_c10d_all_gather(void* group, void** outputs, int n, void* input, char** err) {
  return guarded(err, [&] {
    auto* g = static_cast<Group*>(group);
    std::vector<std::vector<at::Tensor>> out(1);
    for (int i = 0; i < n; ++i) {
      out[0].push_back(*static_cast<at::Tensor*>(outputs[i]));
    }
    std::vector<at::Tensor> in{*static_cast<at::Tensor*>(input)};
    c10d::AllgatherOptions opts;
    opts.timeout = g->timeout;
    wait(g->pg->allgather(out, in, opts), g);
  });
}

bool mtl_c10d_barrier(void* group, char** err) {
  return guarded(err, [&] {
    auto* g = static_cast<Group*>(group);
    c10d::BarrierOptions opts;
    opts.timeout = g->timeout;
    wait(g->pg->barrier(opts), g);
  });
}

}  // extern "C"

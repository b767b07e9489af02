// The c10d shim: torch's own collectives (libtorch's TCPStore and ProcessGroupGloo), behind
// a C API that src/train/dist.rs calls with tch's tensor pointers (`torch::Tensor*`).
// Nothing here moves bytes itself: rendezvous, transport and reduction are c10d's and gloo's.
// C++ exceptions stop at this boundary and come back as error strings (freed by
// dist_free_text), the convention of tch's own C API.

#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace {

struct Group {
  c10::intrusive_ptr<c10d::TCPStore> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> backend;
  int rank;
  int world;
};

char* copy(const char* text) {
  char* out = static_cast<char*>(std::malloc(std::strlen(text) + 1));
  std::strcpy(out, text);
  return out;
}

// Runs `body`; on a C++ exception, stores its message in *error and returns false.
template <typename F>
bool guarded(char** error, F body) {
  try {
    // Collectives write into parameters (leaves that require grad): not a graph operation.
    at::NoGradGuard no_grad;
    body();
    return true;
  } catch (const std::exception& e) {
    *error = copy(e.what());
  } catch (...) {
    *error = copy("unknown C++ exception");
  }
  return false;
}

std::vector<at::Tensor> tensors_of(at::Tensor** tensors, int n) {
  std::vector<at::Tensor> out;
  out.reserve(n);
  for (int i = 0; i < n; ++i) out.push_back(*tensors[i]);
  return out;
}

// Consecutive runs of tensors of one dtype and device, each at most `cap` bytes (a single
// larger tensor is a bucket of its own): what one collective call carries.
std::vector<std::vector<at::Tensor>> buckets(const std::vector<at::Tensor>& tensors, size_t cap) {
  std::vector<std::vector<at::Tensor>> out;
  size_t bytes = 0;
  for (const auto& t : tensors) {
    size_t size = t.numel() * t.element_size();
    bool fits = !out.empty() && bytes + size <= cap && out.back()[0].scalar_type() == t.scalar_type() &&
                out.back()[0].device() == t.device();
    if (!fits) {
      out.emplace_back();
      bytes = 0;
    }
    out.back().push_back(t);
    bytes += size;
  }
  return out;
}

// One flat tensor holding the bucket's values, and back.
at::Tensor flatten(const std::vector<at::Tensor>& bucket) {
  std::vector<at::Tensor> flat;
  flat.reserve(bucket.size());
  for (const auto& t : bucket) flat.push_back(t.reshape({-1}));
  return at::cat(flat);
}

void unflatten(const at::Tensor& flat, const std::vector<at::Tensor>& bucket) {
  int64_t offset = 0;
  for (auto t : bucket) {
    int64_t n = t.numel();
    t.copy_(flat.narrow(0, offset, n).view_as(t));
    offset += n;
  }
}

}  // namespace

extern "C" {

// Meets the others at the rendezvous: rank 0 serves the TCPStore on `listen_fd`, a socket
// the caller bound to the address it was given and listens on (torch's own default binds
// every interface); every rank connects to addr:port. The process group comes later
// (`dist_connect`), once the ranks agree. Returns null and sets *error on failure.
void* dist_join(int rank, int world, const char* addr, int port, int listen_fd, long long timeout_ms,
                char** error) {
  Group* group = nullptr;
  guarded(error, [&] {
    c10d::TCPStoreOptions options;
    options.port = static_cast<std::uint16_t>(port);
    options.isServer = rank == 0;
    if (rank == 0) options.masterListenFd = listen_fd;
    options.numWorkers = world;
    options.waitWorkers = true;
    options.timeout = std::chrono::milliseconds(timeout_ms);
    auto store = c10::make_intrusive<c10d::TCPStore>(addr, options);
    group = new Group{store, nullptr, rank, world};
  });
  return group;
}

// Sets `key` of the rendezvous store to `len` bytes of `value`.
bool dist_store_set(void* handle, const char* key, const char* value, long long len, char** error) {
  auto* group = static_cast<Group*>(handle);
  return guarded(error, [&] {
    group->store->set(key, std::vector<uint8_t>(value, value + len));
  });
}

// The value of `key`, waiting until some rank sets it (up to the store's timeout); the
// bytes are malloc'd into *value (free with dist_free_text), their count in *len.
bool dist_store_get(void* handle, const char* key, char** value, long long* len, char** error) {
  auto* group = static_cast<Group*>(handle);
  return guarded(error, [&] {
    auto bytes = group->store->get(key);
    *value = static_cast<char*>(std::malloc(bytes.size() + 1));
    std::memcpy(*value, bytes.data(), bytes.size());
    *len = static_cast<long long>(bytes.size());
  });
}

// Adds `delta` to the counter `key` (0 when new) and returns the sum in *sum.
bool dist_store_add(void* handle, const char* key, long long delta, long long* sum, char** error) {
  auto* group = static_cast<Group*>(handle);
  return guarded(error, [&] { *sum = group->store->add(key, delta); });
}

// Makes the Gloo process group over the rendezvous store. Gloo's device is the interface
// GLOO_SOCKET_IFNAME names, else `host` when not empty (every rank on this machine: the
// loopback address), else this host's address (torch's convention).
bool dist_connect(void* handle, const char* host, long long timeout_ms, char** error) {
  auto* group = static_cast<Group*>(handle);
  return guarded(error, [&] {
    auto options = c10d::ProcessGroupGloo::Options::create(std::chrono::milliseconds(timeout_ms));
    const char* interface = std::getenv("GLOO_SOCKET_IFNAME");
    options->devices.push_back(interface  ? c10d::ProcessGroupGloo::createDeviceForInterface(interface)
                               : *host    ? c10d::ProcessGroupGloo::createDeviceForHostname(host)
                                          : c10d::ProcessGroupGloo::createDefaultDevice());
    group->backend = c10::make_intrusive<c10d::ProcessGroupGloo>(group->store, group->rank, group->world, options);
  });
}

// Rank `root`'s values into `tensors` on every rank, in buckets of `bucket_bytes`.
bool dist_broadcast(void* handle, at::Tensor** tensors, int n, int root, long long bucket_bytes, char** error) {
  auto* group = static_cast<Group*>(handle);
  return guarded(error, [&] {
    for (const auto& bucket : buckets(tensors_of(tensors, n), bucket_bytes)) {
      std::vector<at::Tensor> flat{flatten(bucket)};
      c10d::BroadcastOptions options;
      options.rootRank = root;
      group->backend->broadcast(flat, options)->wait();
      unflatten(flat[0], bucket);
    }
  });
}

// The mean over the ranks of each tensor, in place, in buckets of `bucket_bytes` whose
// all-reduces are all started before the first is waited for.
bool dist_allreduce_mean(void* handle, at::Tensor** tensors, int n, long long bucket_bytes, char** error) {
  auto* group = static_cast<Group*>(handle);
  return guarded(error, [&] {
    auto all = buckets(tensors_of(tensors, n), bucket_bytes);
    std::vector<std::vector<at::Tensor>> flats;
    flats.reserve(all.size());
    std::vector<c10::intrusive_ptr<c10d::Work>> works;
    for (const auto& bucket : all) {
      flats.push_back({flatten(bucket)});
      works.push_back(group->backend->allreduce(flats.back()));
    }
    for (size_t i = 0; i < all.size(); ++i) {
      works[i]->wait();
      flats[i][0].div_(group->world);
      unflatten(flats[i][0], all[i]);
    }
  });
}

bool dist_barrier(void* handle, char** error) {
  auto* group = static_cast<Group*>(handle);
  return guarded(error, [&] { group->backend->barrier()->wait(); });
}

void dist_free(void* handle) { delete static_cast<Group*>(handle); }

void dist_free_text(char* text) { std::free(text); }
}

// The c10d shim: torch's own collectives (libtorch's TCPStore and ProcessGroupGloo), behind
// a C API that src/train/dist.rs calls with tch's tensor pointers (`torch::Tensor*`).
// Nothing here moves bytes itself: rendezvous, transport and reduction are c10d's and gloo's.
// C++ exceptions stop at this boundary and come back as error strings (freed by
// dist_free_error), the convention of tch's own C API.

#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace {

struct Group {
  c10::intrusive_ptr<c10d::ProcessGroupGloo> backend;
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

// Joins the group: rank 0 serves the TCPStore on addr:port, every rank connects, then the
// Gloo backend meets its peers. Gloo's device is the interface GLOO_SOCKET_IFNAME names,
// else this host's address (torch's convention). Returns null and sets *error on failure.
void* dist_init(int rank, int world, const char* addr, int port, long long timeout_ms, char** error) {
  Group* group = nullptr;
  guarded(error, [&] {
    auto timeout = std::chrono::milliseconds(timeout_ms);
    c10d::TCPStoreOptions store_options;
    store_options.port = static_cast<std::uint16_t>(port);
    store_options.isServer = rank == 0;
    store_options.numWorkers = world;
    store_options.waitWorkers = true;
    store_options.timeout = timeout;
    auto store = c10::make_intrusive<c10d::TCPStore>(addr, store_options);
    auto options = c10d::ProcessGroupGloo::Options::create(timeout);
    const char* interface = std::getenv("GLOO_SOCKET_IFNAME");
    options->devices.push_back(interface ? c10d::ProcessGroupGloo::createDeviceForInterface(interface)
                                         : c10d::ProcessGroupGloo::createDefaultDevice());
    auto backend = c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, world, options);
    group = new Group{backend, world};
  });
  return group;
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

void dist_free_error(char* error) { std::free(error); }
}

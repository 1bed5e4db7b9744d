/*
 * The ArrayBuffer of a view (mem.c's make_view), made through V8's own API
 * because N-API cannot make it the way a view needs:
 *
 * 1. Not counted as memory V8 could free. V8 counts the length of every
 *    ArrayBuffer whose backing store has a deleter as external memory of
 *    the heap, and a young ArrayBuffer of at least twice the young
 *    generation's semispace forces a young collection at the next
 *    ArrayBuffer allocation (V8's Heap::AllocateExternalBackingStore). A
 *    view of a 4K buffer (33 MB) did that on every share: objects were
 *    promoted early, and the importer ran a full mark-compact per share.
 *    Collecting a view frees no memory (its pages are a shared file's), so
 *    its backing store gets V8's EmptyDeleter, which V8 does not count
 *    (BackingStore::PerIsolateAccountingLength); mem.c munmaps the range in
 *    a finalizer of the ArrayBuffer object instead (napi_add_finalizer).
 *
 * 2. Detachable by unmap() only. Since the finalizer follows the object and
 *    not the backing store, the backing store must never move to another
 *    owner: the ArrayBuffer is its own detach key, so a transfer
 *    (postMessage with a transfer list) refuses to detach it, and only
 *    view_detach() below, which passes the key, can.
 *
 * A napi_value is a v8::Local<v8::Value> in Node's N-API implementation
 * (js_native_api_v8.h, V8LocalValueFromJsValue); the conversions below copy
 * it the same way.
 */
#include <node_api.h>
#include <v8.h>

#include <cstring>
#include <memory>

namespace {

v8::Local<v8::Value> to_local(napi_value v) {
  v8::Local<v8::Value> local;
  std::memcpy(static_cast<void *>(&local), &v, sizeof v);
  return local;
}

napi_value to_napi(v8::Local<v8::Value> local) {
  napi_value v;
  std::memcpy(static_cast<void *>(&v), &local, sizeof v);
  return v;
}

}  // namespace

/* An ArrayBuffer over [data, data+len) that V8 does not count and only
 * view_detach can detach. Called from an N-API callback (a handle scope is
 * open). Returns 0 on success. */
extern "C" int view_new(napi_env env, void *data, size_t len, napi_value *out) {
  (void)env;
  v8::Isolate *isolate = v8::Isolate::GetCurrent();
  if (isolate == nullptr) return -1;
  std::shared_ptr<v8::BackingStore> store =
      v8::ArrayBuffer::NewBackingStore(data, len, v8::BackingStore::EmptyDeleter, nullptr);
  v8::Local<v8::ArrayBuffer> ab = v8::ArrayBuffer::New(isolate, store);
  ab->SetDetachKey(ab);
  *out = to_napi(ab);
  return 0;
}

/* Detaches a view made by view_new (byteLength 0). Returns 0 on success. */
extern "C" int view_detach(napi_env env, napi_value value) {
  (void)env;
  v8::Local<v8::Value> v = to_local(value);
  if (!v->IsArrayBuffer()) return -1;
  v8::Local<v8::ArrayBuffer> ab = v.As<v8::ArrayBuffer>();
  v8::TryCatch caught(v8::Isolate::GetCurrent()); /* the caller throws its own error */
  bool ok = false;
  return ab->Detach(ab).To(&ok) && ok ? 0 : -1;
}

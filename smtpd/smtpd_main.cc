// smtpd: the SMTP server on the smtp, submission and submissions listeners.
//
// A network role: runs as the network user (default _maild), chrooted into
// the empty directory, reading nothing on disk after the jail; the TLS
// certificate and key are loaded before it. Everything it receives from the
// network is hostile: the protocol lives in SmtpSession (smtp_session.h),
// this file only carries bytes, limits connections, and relays the
// session's questions.
// Peers:
//   lookup: who gets mail for an address, is this password right. Trusted
//           for its answers; every answer is validated, and a malformed one
//           is fatal.
//   queue:  a new message file (its descriptor), the commit of a finished
//           transaction, the abort of an unfinished one. Same trust.
// Requests carry an id; an answer names its id and must be of the kind
// asked. An answer for a session that has gone meanwhile is dropped (and a
// message file created for it is aborted, so the spool keeps nothing).
#include "common/envelope.h"
#include "common/log.h"
#include "common/net_conn.h"
#include "common/role.h"
#include "smtpd/smtp_session.h"

#include <arpa/inet.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <sys/random.h>
#include <sys/socket.h>

#include <cerrno>
#include <map>
#include <memory>
#include <optional>
#include <string>

namespace {

using namespace maild;

struct SmtpdState;

enum class RequestKind : uint8_t { Resolve, Auth, Create, Commit };

std::string_view to_string(RequestKind kind)
{
	switch (kind) {
	case RequestKind::Resolve:
		return "resolve";
	case RequestKind::Auth:
		return "auth";
	case RequestKind::Create:
		return "create";
	case RequestKind::Commit:
		return "commit";
	}
	return "unknown";
}

// One client: its connection, its SMTP session, and the host glue between
// them and the peers.
class Connection final : public SmtpSessionHost {
public:
	Connection(SmtpdState &state, uint64_t serial, UniqueFd fd, const ListenerSocket &listener, SmtpClient client);

	void write(std::string_view bytes) override { conn_.write(bytes); }
	void start_tls() override;
	void close() override { conn_.close_after_flush(); }
	void set_timeout(uint32_t seconds) override { conn_.set_timeout(seconds); }
	void resolve(std::string_view address) override;
	void authenticate(std::string_view user, std::string_view password) override;
	void create_message() override;
	void commit_message(const Envelope &envelope) override;
	void abort_message(std::string_view qid) override;
	void log(std::string_view event) override;

	SmtpSession &session() { return session_; }
	const std::string &address() const { return client_address_; }
	// Reads only while the session takes input (output backpressure is the
	// NetConn's own).
	void update_reading();

private:
	void on_tls_ready();
	void on_closed(NetCloseReason reason, std::string_view detail);

	SmtpdState &state_;
	uint64_t serial_;
	std::string id_;
	std::string client_address_;
	bool started_ = false;
	NetConn conn_;
	SmtpSession session_;
};

struct PendingRequest {
	uint64_t serial; // the connection that asked
	RequestKind kind;
};

struct SmtpdState {
	RoleContext *ctx = nullptr;
	TlsPtr tls_server; // null without a certificate
	std::vector<event *> listener_events;
	event *accept_pause = nullptr; // out of descriptors: accept again later
	std::map<uint64_t, std::unique_ptr<Connection>> connections;
	std::map<std::string, uint32_t> per_address;
	std::map<uint32_t, PendingRequest> pending;
	uint64_t next_serial = 1;
	uint32_t next_request = 1;

	Channel &peer(Role role) const
	{
		Channel *channel = ctx->peers[static_cast<std::size_t>(role)].get();
		if (channel == nullptr)
			fatalx("smtpd: no channel to %s", std::string(maild::to_string(role)).c_str());
		return *channel;
	}
	uint32_t ask(uint64_t serial, RequestKind kind)
	{
		uint32_t id = next_request++;
		pending.emplace(id, PendingRequest{serial, kind});
		return id;
	}
	// address by value: it may be the member of the connection erased here.
	void forget(uint64_t serial, std::string address)
	{
		connections.erase(serial);
		auto it = per_address.find(address);
		if (it != per_address.end() && --it->second == 0)
			per_address.erase(it);
	}
};

std::string random_session_id()
{
	uint8_t bytes[8];
	if (getrandom(bytes, sizeof bytes, 0) != sizeof bytes)
		fatal("smtpd: getrandom");
	static constexpr char kHex[] = "0123456789abcdef";
	std::string id;
	for (uint8_t b : bytes) {
		id += kHex[b >> 4];
		id += kHex[b & 0xf];
	}
	return id;
}

SmtpSessionConfig session_config(const Config &config, ListenerKind kind, bool tls_available)
{
	SmtpSessionConfig sc;
	sc.kind = kind;
	sc.hostname = config.hostname;
	sc.tls_available = tls_available;
	sc.max_message_size = config.max_message_size;
	sc.max_recipients = config.max_recipients;
	// The config counts the CRLF (RFC 5321 4.5.3.1.4); the session does not.
	sc.max_command_length = config.max_command_length - 2;
	sc.max_line_length = config.max_line_length;
	sc.max_errors = config.max_errors;
	sc.command_timeout = config.command_timeout;
	sc.data_timeout = config.data_timeout;
	sc.pipelining_guard = config.pipelining_guard;
	sc.received_auth_user = config.received_auth_user;
	return sc;
}

Connection::Connection(SmtpdState &state, uint64_t serial, UniqueFd fd, const ListenerSocket &listener,
    SmtpClient client)
    : state_(state), serial_(serial), id_(client.session_id), client_address_(client.address),
      conn_(state.ctx->base, std::move(fd),
	  NetConn::Callbacks{
	      .on_data =
		  [this](std::string_view bytes) {
			  session_.on_input(bytes);
			  update_reading();
		  },
	      .on_tls_ready = [this] { on_tls_ready(); },
	      .on_timeout =
		  [this] {
			  if (started_) {
				  session_.on_timeout();
			  } else {
				  log("tls handshake timed out");
				  conn_.close_after_flush();
			  }
		  },
	      .on_closed = [this](NetCloseReason reason, std::string_view detail) { on_closed(reason, detail); },
	  }),
      session_(*this, session_config(state.ctx->config, listener.kind, state.tls_server != nullptr), std::move(client))
{
	log("connect address=" + client_address_ + " listener=" + std::string(maild::to_string(listener.kind)));
	if (implicit_tls(listener.kind)) {
		// The handshake has the command timeout too, so that a silent
		// client does not hold a connection slot.
		conn_.set_timeout(state.ctx->config.command_timeout);
		conn_.start_tls(state.tls_server.get());
		return;
	}
	started_ = true;
	session_.start(std::nullopt);
	update_reading();
}

void Connection::update_reading()
{
	if (session_.wants_input())
		conn_.resume_reading();
	else
		conn_.pause_reading();
}

void Connection::start_tls()
{
	if (!state_.tls_server) {
		// The session offers STARTTLS only with a certificate loaded.
		panic("smtpd: session=%s STARTTLS without a TLS context", id_.c_str());
	}
	conn_.start_tls(state_.tls_server.get());
}

void Connection::on_tls_ready()
{
	TlsInfo info{conn_.tls_version(), conn_.tls_cipher()};
	if (started_) {
		session_.on_tls_started(info); // which logs it
	} else {
		log("tls version=" + info.version + " cipher=" + info.cipher);
		started_ = true;
		session_.start(info);
	}
	update_reading();
}

void Connection::on_closed(NetCloseReason reason, std::string_view detail)
{
	if (reason == NetCloseReason::TlsFailed)
		log("tls handshake or transfer failed: " + std::string(detail));
	else if (reason != NetCloseReason::Closed)
		log("disconnected reason=" + std::string(maild::to_string(reason)) +
		    (detail.empty() ? "" : " detail=" + std::string(detail)));
	else
		log("disconnected");
	if (!session_.closed())
		session_.on_eof();
	// The session may have written or asked nothing more that needs us; the
	// NetConn allows its owner to go from inside its callback.
	state_.forget(serial_, client_address_);
}

void Connection::resolve(std::string_view address)
{
	MsgWriter w;
	w.u32(state_.ask(serial_, RequestKind::Resolve));
	w.str(address);
	state_.peer(Role::Lookup).send(MsgType::LookupResolveRequest, w.data());
}

void Connection::authenticate(std::string_view user, std::string_view password)
{
	MsgWriter w;
	w.u32(state_.ask(serial_, RequestKind::Auth));
	w.str(client_address_);
	w.str(user);
	w.str(password);
	state_.peer(Role::Lookup).send(MsgType::LookupAuthRequest, w.data());
}

void Connection::create_message()
{
	MsgWriter w;
	w.u32(state_.ask(serial_, RequestKind::Create));
	state_.peer(Role::Queue).send(MsgType::QueueCreate, w.data());
}

void Connection::commit_message(const Envelope &envelope)
{
	MsgWriter w;
	w.u32(state_.ask(serial_, RequestKind::Commit));
	write_envelope(w, envelope);
	state_.peer(Role::Queue).send(MsgType::QueueCommit, w.data());
}

void send_abort(SmtpdState &state, std::string_view qid)
{
	MsgWriter w;
	w.str(qid);
	state.peer(Role::Queue).send(MsgType::QueueAbort, w.data());
}

void Connection::abort_message(std::string_view qid)
{
	send_abort(state_, qid);
}

void Connection::log(std::string_view event)
{
	log_info("smtpd: session=%s %.*s", id_.c_str(), static_cast<int>(event.size()), event.data());
}

// --- answers from the peers ----------------------------------------------

[[noreturn]] void malformed(MsgType type)
{
	fatalx("smtpd: malformed %s", std::string(maild::to_string(type)).c_str());
}

// The connection that asked request `id` of this kind, or nullptr if it has
// gone. An id never asked, or asked as another kind, is fatal.
Connection *take_request(SmtpdState &state, uint32_t id, RequestKind kind, MsgType type)
{
	auto it = state.pending.find(id);
	if (it == state.pending.end() || it->second.kind != kind)
		fatalx("smtpd: %s for request %u, which is no pending %s", std::string(maild::to_string(type)).c_str(),
		    id, std::string(to_string(kind)).c_str());
	uint64_t serial = it->second.serial;
	state.pending.erase(it);
	auto conn = state.connections.find(serial);
	return conn == state.connections.end() ? nullptr : conn->second.get();
}

bool read_strings(MsgReader &r, std::vector<std::string> &out)
{
	uint32_t n = r.u32();
	if (n > kMaxEnvelopeTargets)
		return false;
	for (uint32_t i = 0; i < n && r.ok(); i++)
		out.emplace_back(r.str(kMaxEnvelopeAddress));
	return r.ok();
}

void on_resolve_result(SmtpdState &state, Msg &&msg)
{
	MsgReader r{msg.payload};
	uint32_t id = r.u32();
	uint8_t kind = r.u8();
	ResolveAnswer answer;
	if (!read_strings(r, answer.local_accounts) || !read_strings(r, answer.external))
		malformed(msg.type);
	answer.error = r.str(kMaxEnvelopeText);
	if (!r.end() || kind > static_cast<uint8_t>(ResolveKind::TempFail))
		malformed(msg.type);
	answer.kind = static_cast<ResolveKind>(kind);
	if (Connection *conn = take_request(state, id, RequestKind::Resolve, msg.type)) {
		conn->session().on_resolved(answer);
		conn->update_reading();
	}
}

void on_auth_result(SmtpdState &state, Msg &&msg)
{
	MsgReader r{msg.payload};
	uint32_t id = r.u32();
	uint8_t result = r.u8();
	std::string account(r.str(kMaxEnvelopeAddress));
	if (!r.end() || result > static_cast<uint8_t>(AuthResult::TempFail))
		malformed(msg.type);
	if (Connection *conn = take_request(state, id, RequestKind::Auth, msg.type)) {
		conn->session().on_authenticated(static_cast<AuthResult>(result), account);
		conn->update_reading();
	}
}

void on_queue_created(SmtpdState &state, Msg &&msg)
{
	MsgReader r{msg.payload};
	uint32_t id = r.u32();
	std::string qid(r.str(64));
	if (!r.end() || !is_valid_queue_id(qid) || msg.fds.size() != 1 || !msg.fds[0])
		malformed(msg.type);
	Connection *conn = take_request(state, id, RequestKind::Create, msg.type);
	if (conn == nullptr) {
		// Nobody will write or commit it: let the queue remove the file.
		log_debug("smtpd: message file qid=%s created for a closed session, aborting", qid.c_str());
		send_abort(state, qid);
		return;
	}
	conn->session().on_message_created(qid, std::move(msg.fds[0]));
	conn->update_reading();
}

void on_queue_create_failed(SmtpdState &state, Msg &&msg)
{
	MsgReader r{msg.payload};
	uint32_t id = r.u32();
	std::string error(r.str(kMaxEnvelopeText));
	if (!r.end())
		malformed(msg.type);
	if (Connection *conn = take_request(state, id, RequestKind::Create, msg.type)) {
		conn->session().on_message_create_failed(error);
		conn->update_reading();
	}
}

void on_commit_result(SmtpdState &state, Msg &&msg)
{
	MsgReader r{msg.payload};
	uint32_t id = r.u32();
	uint8_t ok = r.u8();
	std::string error(r.str(kMaxEnvelopeText));
	if (!r.end() || ok > 1)
		malformed(msg.type);
	if (Connection *conn = take_request(state, id, RequestKind::Commit, msg.type)) {
		conn->session().on_committed(ok == 1, error);
		conn->update_reading();
	}
}

// --- accepting -----------------------------------------------------------

struct ListenerArg {
	SmtpdState *state;
	const ListenerSocket *listener;
};

std::optional<SmtpClient> peer_of(const sockaddr_storage &ss)
{
	SmtpClient client;
	char text[INET6_ADDRSTRLEN];
	if (ss.ss_family == AF_INET) {
		const auto *sin = reinterpret_cast<const sockaddr_in *>(&ss);
		if (inet_ntop(AF_INET, &sin->sin_addr, text, sizeof text) == nullptr)
			return std::nullopt;
		client.port = ntohs(sin->sin_port);
	} else if (ss.ss_family == AF_INET6) {
		const auto *sin6 = reinterpret_cast<const sockaddr_in6 *>(&ss);
		if (inet_ntop(AF_INET6, &sin6->sin6_addr, text, sizeof text) == nullptr)
			return std::nullopt;
		client.port = ntohs(sin6->sin6_port);
	} else {
		return std::nullopt;
	}
	client.address = text;
	return client;
}

void set_listening(SmtpdState &state, bool on)
{
	for (event *ev : state.listener_events) {
		if (on)
			event_add(ev, nullptr);
		else
			event_del(ev);
	}
}

void on_accept_pause_over(evutil_socket_t, short, void *arg)
{
	set_listening(*static_cast<SmtpdState *>(arg), true);
}

void refuse(SmtpdState &state, UniqueFd fd, const std::string &address)
{
	std::string reply = "421 4.7.0 " + state.ctx->config.hostname + " Too many connections, try again later\r\n";
	// One short line into an empty socket buffer: a short write only means
	// the client is already gone.
	(void)!::write(fd.get(), reply.data(), reply.size());
	log_info("smtpd: refused: too many connections address=%s", address.c_str());
}

void on_accept(evutil_socket_t listen_fd, short, void *arg)
{
	auto &[state, listener] = *static_cast<ListenerArg *>(arg);
	const Config &config = state->ctx->config;
	for (;;) {
		sockaddr_storage ss{};
		socklen_t len = sizeof ss;
		UniqueFd fd(accept4(listen_fd, reinterpret_cast<sockaddr *>(&ss), &len, SOCK_NONBLOCK | SOCK_CLOEXEC));
		if (!fd) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
				// Level-triggered listeners would spin: wait a second.
				log_warn("smtpd: accept");
				set_listening(*state, false);
				timeval tv{1, 0};
				evtimer_add(state->accept_pause, &tv);
			}
			return; // EAGAIN, or a connection aborted before we took it
		}
		auto client = peer_of(ss);
		if (!client)
			continue;
		uint32_t &from_address = state->per_address[client->address];
		if (state->connections.size() >= config.max_connections ||
		    from_address >= config.max_connections_per_address) {
			if (from_address == 0)
				state->per_address.erase(client->address);
			refuse(*state, std::move(fd), client->address);
			continue;
		}
		from_address++;
		client->session_id = random_session_id();
		uint64_t serial = state->next_serial++;
		// In the map before the session starts: its first questions name it.
		auto it = state->connections.emplace(serial, nullptr).first;
		it->second = std::make_unique<Connection>(*state, serial, std::move(fd), *listener, std::move(*client));
	}
}

void start_listening(SmtpdState &state, RoleContext &ctx)
{
	state.accept_pause = evtimer_new(ctx.base, on_accept_pause_over, &state);
	if (state.accept_pause == nullptr)
		fatalx("smtpd: evtimer_new failed");
	for (const auto &listener : ctx.listeners) {
		switch (listener.kind) {
		case ListenerKind::Smtp:
		case ListenerKind::Submission:
			break;
		case ListenerKind::Submissions:
			if (!state.tls_server)
				fatalx("smtpd: submissions on %s port %u needs tls-certificate and tls-key",
				    listener.address.c_str(), listener.port);
			break;
		case ListenerKind::Imap:
		case ListenerKind::Imaps:
		case ListenerKind::Pop3:
		case ListenerKind::Pop3s:
			continue; // not ours
		}
		// Both live as long as the process: the listeners are served until exit.
		auto *arg = new ListenerArg{&state, &listener};
		event *ev = event_new(ctx.base, listener.fd.get(), EV_READ | EV_PERSIST, on_accept, arg);
		if (ev == nullptr || event_add(ev, nullptr) < 0)
			fatalx("smtpd: cannot watch listener %s port %u", listener.address.c_str(), listener.port);
		state.listener_events.push_back(ev);
		log_info("smtpd: listening kind=%s address=%s port=%u", std::string(maild::to_string(listener.kind)).c_str(),
		    listener.address.c_str(), listener.port);
	}
}

} // namespace

int main(int argc, char **argv)
{
	// Owned by main for the life of the process, as the role's state.
	static SmtpdState state;
	RoleSpec spec{Role::Smtpd, {}, {}, {}};
	spec.pre_jail = [](RoleContext &ctx) {
		const Config &config = ctx.config;
		if (config.tls_certificate.empty() || config.tls_key.empty())
			return;
		// Inside the jail no file can be opened: the certificate and key
		// are read now, while the paths still resolve.
		std::string error;
		state.tls_server = tls_server_context(config.tls_certificate, config.tls_key, error);
		if (!state.tls_server)
			fatalx("smtpd: TLS certificate %s, key %s: %s", config.tls_certificate.c_str(),
			    config.tls_key.c_str(), error.c_str());
	};
	spec.post_jail = [](RoleContext &ctx) {
		state.ctx = &ctx;
		start_listening(state, ctx);
	};
	auto rule = [](MsgType type, Role from, void (*handler)(SmtpdState &, Msg &&)) {
		return MsgRule{type, from, RolePhase::Running, false,
		    [handler](RoleContext &, Channel &, Msg &&msg) { handler(state, std::move(msg)); }};
	};
	spec.rules = {
	    rule(MsgType::LookupResolveResult, Role::Lookup, on_resolve_result),
	    rule(MsgType::LookupAuthResult, Role::Lookup, on_auth_result),
	    rule(MsgType::QueueCreated, Role::Queue, on_queue_created),
	    rule(MsgType::QueueCreateFailed, Role::Queue, on_queue_create_failed),
	    rule(MsgType::QueueCommitResult, Role::Queue, on_commit_result),
	};
	run_role(spec, argc, argv);
}

// The generated Kotlin bindings on the JVM against a running Loopwork server: the technician's
// offline day and the owner's confirmation, as an Android app would drive them.
//
// Run by tests/tests/bindings.rs, which starts the server, builds the library, generates the
// bindings and compiles this file with them. Exits non-zero on the first failed check.

package com.loopwork.test

import com.loopwork.core.ChangeObserver
import com.loopwork.core.Grade
import com.loopwork.core.HttpHeader
import com.loopwork.core.HttpResponse
import com.loopwork.core.ListFilter
import com.loopwork.core.Loopwork
import com.loopwork.core.LoopworkException
import com.loopwork.core.Role
import com.loopwork.core.Status
import com.loopwork.core.TimelineEvent
import com.loopwork.core.Transport
import com.loopwork.core.TransportException
import java.net.URI
import java.net.http.HttpClient
import java.net.http.HttpRequest
import java.nio.file.Files
import java.time.Duration
import java.util.concurrent.CopyOnWriteArrayList
import kotlin.system.exitProcess

const val PASSWORD = "loopwork-demo"

/** The JDK's HTTP client as the host transport; `online = false` is a basement with no signal. */
class JdkTransport : Transport {
    @Volatile var online = true
    private val client = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build()

    override fun post(url: String, headers: List<HttpHeader>, body: ByteArray): HttpResponse =
        send(url, headers) { it.POST(HttpRequest.BodyPublishers.ofByteArray(body)) }

    override fun get(url: String, headers: List<HttpHeader>): HttpResponse = send(url, headers) { it.GET() }

    private fun send(
        url: String,
        headers: List<HttpHeader>,
        method: (HttpRequest.Builder) -> HttpRequest.Builder,
    ): HttpResponse {
        if (!online) throw TransportException.Failed("no signal")
        val request = HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofSeconds(30))
        headers.forEach { request.header(it.name, it.value) }
        try {
            val response = client.send(
                method(request).build(),
                java.net.http.HttpResponse.BodyHandlers.ofByteArray(),
            )
            return HttpResponse(response.statusCode().toUShort(), response.body())
        } catch (e: java.io.IOException) {
            throw TransportException.Failed(e.toString())
        }
    }
}

class Recorder : ChangeObserver {
    val calls = CopyOnWriteArrayList<Pair<List<String>, Boolean>>()
    override fun ordersChanged(orderIds: List<String>, fromSync: Boolean) {
        calls.add(orderIds to fromSync)
    }
}

fun check(condition: Boolean, what: String) {
    if (!condition) {
        System.err.println("FAILED: $what")
        exitProcess(1)
    }
    println("ok: $what")
}

inline fun <reified E : Throwable> expect(what: String, block: () -> Unit): E {
    try {
        block()
    } catch (e: Throwable) {
        if (e is E) {
            println("ok: $what -> ${e::class.simpleName}")
            return e
        }
        System.err.println("FAILED: $what threw ${e::class.qualifiedName}: $e")
        exitProcess(1)
    }
    System.err.println("FAILED: $what did not throw ${E::class.simpleName}")
    exitProcess(1)
}

fun main() {
    val server = System.getenv("LOOPWORK_SERVER_URL") ?: error("LOOPWORK_SERVER_URL is not set")
    val root = Files.createTempDirectory("loopwork-kotlin")

    val techNet = JdkTransport()
    val tech = Loopwork.open(root.resolve("tech").toString(), techNet)
    expect<LoopworkException.NotSignedIn>("a call before sign-in") { tech.listOrders(ListFilter()) }
    expect<LoopworkException.NotSignedIn>("a wrong password") { tech.signIn(server, "wang", "nope", "Pixel") }
    val session = tech.signIn(server, "wang", PASSWORD, "Pixel 8")
    check(session.role == Role.TECHNICIAN, "the technician is signed in as a technician")
    val heard = Recorder()
    tech.setObserver(heard)
    tech.sync()
    check(heard.calls.any { it.second }, "the observer heard the first sync")

    val order = tech.listOrders(ListFilter(assignedToMe = true, openOnly = true)).single()
    check(order.status == Status.ASSIGNED, "the assigned order arrived")
    check(order.nextDeadlineMs != null, "it has a deadline")

    // The plant room: no signal.
    techNet.online = false
    tech.accept(order.id)
    tech.arrive(order.id)
    tech.startWork(order.id)
    tech.addNote(order.id, "更换角阀,已试水无渗漏")
    tech.logTime(order.id, System.currentTimeMillis() - 3_600_000, System.currentTimeMillis())
    tech.complete(order.id, "已修复")
    expect<LoopworkException.Offline>("a sync with no signal") { tech.sync() }
    expect<LoopworkException.NotPermitted>("a technician setting the grade") { tech.setGrade(order.id, Grade.CRITICAL) }
    check(tech.syncStatus().pendingUploads >= 6uL, "six changes wait for upload")
    val offline = tech.getOrder(order.id)
    check(offline.summary.status == Status.AWAITING_CONFIRMATION, "completed offline")
    check(offline.countdown.respondedAtMs != null, "the countdown knows the response time")
    expect<LoopworkException.Offline>("the owner's contact needs signal") { tech.contact(order.id) }

    // Signal again.
    techNet.online = true
    val report = tech.sync()
    check(report.acknowledged >= 6uL, "the server acknowledged the offline work")
    check(tech.syncStatus().pendingUploads == 0uL, "nothing left to upload")
    check(tech.contact(order.id).phone == "138****8005", "the owner's phone is masked")

    val owner = Loopwork.open(root.resolve("owner").toString(), JdkTransport())
    owner.signIn(server, "yezhu1502", PASSWORD, "iPhone")
    owner.sync()
    check(owner.getOrder(order.id).summary.status == Status.AWAITING_CONFIRMATION, "the owner sees the completion")
    expect<LoopworkException.NotPermitted>("a rating of 6") { owner.confirm(order.id, 6u, null) }
    owner.confirm(order.id, 5u, "很满意")
    owner.sync()

    heard.calls.clear()
    tech.sync()
    check(heard.calls.any { it.second && order.id in it.first }, "the observer heard the confirmation arrive")
    for ((who, app) in listOf("technician" to tech, "owner" to owner)) {
        val done = app.getOrder(order.id)
        check(done.summary.status == Status.CONFIRMED, "the $who sees the order confirmed")
        check(done.rating == 5.toUByte() && done.ratingComment == "很满意", "the $who sees the rating")
        check(done.notes.single().text == "更换角阀,已试水无渗漏", "the $who sees the note")
    }
    val actions = tech.timeline(order.id).mapNotNull { (it.event as? TimelineEvent.Transition)?.action }
    check(actions == listOf("assign", "accept", "arrive", "start", "complete", "confirm"), "the timeline: $actions")

    // Threads: list screens stay responsive on other threads while syncs run.
    val failures = CopyOnWriteArrayList<Throwable>()
    val threads = (1..8).map { i ->
        Thread {
            try {
                repeat(20) {
                    if (i % 2 == 0) tech.sync() else tech.listOrders(ListFilter())
                }
            } catch (e: Throwable) {
                failures.add(e)
            }
        }
    }
    threads.forEach { it.start() }
    threads.forEach { it.join() }
    check(failures.isEmpty(), "eight threads syncing and listing at once: $failures")

    tech.signOut(true)
    check(tech.session() == null, "signed out")
    check(!Files.exists(root.resolve("tech").resolve("loopwork.db")), "the technician's data is wiped")
    tech.close()
    owner.close()
    println("all Kotlin binding checks passed")
}

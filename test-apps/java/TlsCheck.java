import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.io.PrintWriter;
import java.net.InetAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.security.KeyStore;
import java.security.Principal;
import java.security.PrivateKey;
import java.security.Provider;
import java.security.Security;
import java.security.cert.Certificate;
import java.security.cert.X509Certificate;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.KeyManager;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLServerSocket;
import javax.net.ssl.SSLSession;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.TrustManagerFactory;
import javax.net.ssl.X509ExtendedKeyManager;

/**
 * A JSSE TLS server whose private key is a keyfrag token key (SunPKCS11 key store), and a
 * client in the same JVM that trusts only the root of the key's certificate chain. The client checks the
 * handshake, the negotiated protocol, that the server presented the token's certificate, and
 * a line sent to the server and echoed back.
 *
 * usage: java TlsCheck PKCS11_CFG PIN ALIAS PROTOCOL [CIPHER_SUITE]
 * (PROTOCOL is TLSv1.2 or TLSv1.3; the module reads $KEYFRAG_CONF.)
 */
public final class TlsCheck {
    /** A bound on every blocking step, so that a broken peer fails the check, not hangs it. */
    private static final int TIMEOUT_MS = 30_000;

    public static void main(String[] args) throws Exception {
        if (args.length < 4) {
            System.err.println("usage: TlsCheck PKCS11_CFG PIN ALIAS PROTOCOL [CIPHER_SUITE]");
            System.exit(2);
        }
        String cfg = args[0];
        char[] pin = args[1].toCharArray();
        String alias = args[2];
        String protocol = args[3];
        String suite = args.length > 4 ? args[4] : null;

        Provider p11 = Security.getProvider("SunPKCS11").configure(cfg);
        Security.addProvider(p11);
        KeyStore token = KeyStore.getInstance("PKCS11", p11);
        token.load(null, pin);
        if (!(token.getKey(alias, null) instanceof PrivateKey)) {
            fail("no private key entry " + alias + " on the token");
        }
        Certificate[] chain = token.getCertificateChain(alias);
        Certificate tokenCert = chain[0];

        // The server offers only this alias, so the key it signs with is the token's.
        KeyManagerFactory kmf = KeyManagerFactory.getInstance("SunX509");
        kmf.init(token, pin);
        X509ExtendedKeyManager base = (X509ExtendedKeyManager) kmf.getKeyManagers()[0];
        X509ExtendedKeyManager only = new OneAlias(base, alias);
        SSLContext serverCtx = SSLContext.getInstance("TLS");
        serverCtx.init(new KeyManager[] {only}, null, null);

        KeyStore trust = KeyStore.getInstance("PKCS12");
        trust.load(null, null);
        // The client trusts the root of the chain the token holds (the key's own certificate
        // when it is self-signed).
        trust.setCertificateEntry("root", chain[chain.length - 1]);
        TrustManagerFactory tmf =
                TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        tmf.init(trust);
        SSLContext clientCtx = SSLContext.getInstance("TLS");
        clientCtx.init(null, tmf.getTrustManagers(), null);

        SSLServerSocket server = (SSLServerSocket) serverCtx.getServerSocketFactory()
                .createServerSocket(0, 1, InetAddress.getLoopbackAddress());
        server.setEnabledProtocols(new String[] {protocol});
        if (suite != null) {
            server.setEnabledCipherSuites(new String[] {suite});
        }
        server.setSoTimeout(TIMEOUT_MS);
        // A daemon thread, so that a failed handshake ends the JVM instead of hanging it.
        CompletableFuture<String> served = new CompletableFuture<>();
        Thread serverThread = new Thread(() -> {
            try (SSLSocket s = (SSLSocket) server.accept()) {
                s.setSoTimeout(TIMEOUT_MS);
                BufferedReader in = new BufferedReader(
                        new InputStreamReader(s.getInputStream(), StandardCharsets.UTF_8));
                PrintWriter out = new PrintWriter(
                        new OutputStreamWriter(s.getOutputStream(), StandardCharsets.UTF_8), true);
                String line = in.readLine();
                out.println("echo: " + line);
                served.complete(line);
            } catch (Exception e) {
                served.completeExceptionally(e);
            }
        });
        serverThread.setDaemon(true);
        serverThread.start();

        String what = protocol + (suite != null ? " " + suite : "");
        try (SSLSocket client = (SSLSocket) clientCtx.getSocketFactory()
                .createSocket(server.getInetAddress(), server.getLocalPort())) {
            client.setSoTimeout(TIMEOUT_MS);
            client.setEnabledProtocols(new String[] {protocol});
            if (suite != null) {
                client.setEnabledCipherSuites(new String[] {suite});
            }
            client.startHandshake();
            SSLSession session = client.getSession();
            if (!protocol.equals(session.getProtocol())) {
                fail(what + ": negotiated " + session.getProtocol());
            }
            Certificate[] peer = session.getPeerCertificates();
            if (!peer[0].equals(tokenCert)) {
                fail(what + ": the server did not present the token's certificate");
            }
            PrintWriter out = new PrintWriter(
                    new OutputStreamWriter(client.getOutputStream(), StandardCharsets.UTF_8), true);
            BufferedReader in = new BufferedReader(
                    new InputStreamReader(client.getInputStream(), StandardCharsets.UTF_8));
            out.println("hello over " + protocol);
            String reply = in.readLine();
            if (!("echo: hello over " + protocol).equals(reply)) {
                fail(what + ": unexpected reply " + reply);
            }
            if (!("hello over " + protocol).equals(served.get(TIMEOUT_MS, TimeUnit.MILLISECONDS))) {
                fail(what + ": the server read another line");
            }
            System.out.println("ok - JSSE " + session.getProtocol() + " " + session.getCipherSuite()
                    + ": handshake with the token key, line echoed");
        } catch (Exception e) {
            String serverSide = served.isCompletedExceptionally() ? " (server: "
                    + served.handle((v, t) -> String.valueOf(t)).join() + ")" : "";
            fail(what + ": " + e + serverSide);
        } finally {
            server.close();
        }
    }

    /** A key manager that serves one alias of the token, whatever else the token holds. */
    private static final class OneAlias extends X509ExtendedKeyManager {
        private final X509ExtendedKeyManager base;
        private final String alias;

        OneAlias(X509ExtendedKeyManager base, String alias) {
            this.base = base;
            this.alias = alias;
        }

        @Override
        public String chooseServerAlias(String type, Principal[] issuers, Socket socket) {
            return alias;
        }

        @Override
        public String chooseEngineServerAlias(String type, Principal[] issuers, SSLEngine e) {
            return alias;
        }

        @Override
        public String[] getServerAliases(String type, Principal[] issuers) {
            return new String[] {alias};
        }

        @Override
        public String chooseClientAlias(String[] types, Principal[] issuers, Socket socket) {
            return null;
        }

        @Override
        public String[] getClientAliases(String type, Principal[] issuers) {
            return null;
        }

        @Override
        public X509Certificate[] getCertificateChain(String a) {
            return base.getCertificateChain(a);
        }

        @Override
        public PrivateKey getPrivateKey(String a) {
            return base.getPrivateKey(a);
        }
    }

    private static void fail(String why) {
        System.out.println("not ok - " + why);
        System.exit(1);
    }
}

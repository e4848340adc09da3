PRAGMA foreign_keys=OFF;
BEGIN TRANSACTION;
CREATE TABLE ledger_meta(k TEXT PRIMARY KEY, v TEXT NOT NULL);
INSERT INTO ledger_meta VALUES('format','bourse-ledger-1');
INSERT INTO ledger_meta VALUES('key','ed25519:-Wr1o9rXMK3FbI4n4Mkpph8-FWuwszW3aFo_PQyXHRE');
CREATE TABLE ledger_entries(seq INTEGER PRIMARY KEY, data TEXT NOT NULL);
INSERT INTO ledger_entries VALUES(0,'{"body":{"by":null,"key":"ed25519:-Wr1o9rXMK3FbI4n4Mkpph8-FWuwszW3aFo_PQyXHRE","kind":"broker","name":"broker","site":null},"prev":"","seq":0,"ts":1796552005057,"type":"principal_added"}');
INSERT INTO ledger_entries VALUES(1,'{"body":{"admin":"ed25519:lk1zyR7m2UuWQXjVePws4UlWkTqXQojCpyVXsTAsscM","by":null},"prev":"b94a9c28680c46f2a03d55fa10b76fc63632f6b9057708f7f7c1c8c5aa02dcba","seq":1,"ts":1796552005057,"type":"admin_added"}');
INSERT INTO ledger_entries VALUES(2,'{"body":{"by":"ed25519:lk1zyR7m2UuWQXjVePws4UlWkTqXQojCpyVXsTAsscM","key":"ed25519:7eBYh-zppMaabATtHgbO3UkQ397LzA7niarrK8lcCTc","kind":"site","name":"demo.pi","site":"demo"},"prev":"31956f40ad8d47adb97cef2139b685c21bcdaaf3a669f89ed606a71d9ccb5398","seq":2,"ts":1796552008247,"type":"principal_added"}');
INSERT INTO ledger_entries VALUES(3,'{"body":{"by":"ed25519:lk1zyR7m2UuWQXjVePws4UlWkTqXQojCpyVXsTAsscM","pi":"ed25519:7eBYh-zppMaabATtHgbO3UkQ397LzA7niarrK8lcCTc","site":"demo","slice_limit":10},"prev":"be5eb057a3a889cb2f72f9040dc4947052550be561a1dca001b973c457dfa8bf","seq":3,"ts":1796552008247,"type":"site_added"}');
INSERT INTO ledger_entries VALUES(4,'{"body":{"by":"ed25519:7eBYh-zppMaabATtHgbO3UkQ397LzA7niarrK8lcCTc","key":"ed25519:sidN1W6zOydIVa-9Cee-EXmFY7vAlUlTQnMA2iEEJzs","kind":"user","name":"alice","site":"demo"},"prev":"9d03130cd066a0b547d93cd53744d4ddbdb54d51236a72e885659561c30eddaa","seq":4,"ts":1796552008255,"type":"principal_added"}');
INSERT INTO ledger_entries VALUES(5,'{"body":{"by":"ed25519:7eBYh-zppMaabATtHgbO3UkQ397LzA7niarrK8lcCTc","key":"ed25519:vTDFBBMf-cnrG5Dwyyi8DbIMFoKJMAoWP3Nr7NGTDqI","kind":"node","name":"node.demo-n1","site":"demo"},"prev":"dd2692461855721a026e246e5f10c362145afecc7ae98c4c59460429eec170ca","seq":5,"ts":1796552008260,"type":"principal_added"}');
INSERT INTO ledger_entries VALUES(6,'{"body":{"by":"ed25519:7eBYh-zppMaabATtHgbO3UkQ397LzA7niarrK8lcCTc","capacity":{"cpu_mcores":2000,"disk_mib":20480,"mem_mib":4096,"net_max_kbps":100000,"net_min_kbps":10000},"key":"ed25519:vTDFBBMf-cnrG5Dwyyi8DbIMFoKJMAoWP3Nr7NGTDqI","node":"demo-n1","site":"demo"},"prev":"73680cbf283afe16150b8389718bf9ff24ec3f4e3193a78492cee9f53f578204","seq":6,"ts":1796552008260,"type":"node_added"}');
INSERT INTO ledger_entries VALUES(7,'{"body":{"rcap":{"holder":"ed25519:-Wr1o9rXMK3FbI4n4Mkpph8-FWuwszW3aFo_PQyXHRE","id":"grant-demo-n1","issuer":"ed25519:7eBYh-zppMaabATtHgbO3UkQ397LzA7niarrK8lcCTc","node":"demo-n1","not_after":1798971208,"not_before":1796551948,"parent":null,"res":{"cpu_mcores":2000,"disk_mib":20480,"mem_mib":4096,"net_max_kbps":100000,"net_min_kbps":10000},"sig":"3UvrZNAH_f-VIBiKZ3sczTaKeSncj_BGn18pUJ-MSRTLUhSVuVqEJH8uqRJYUs6uADl_o6gqAEpAI_ufVcctDw","v":1}},"prev":"0ff57418c254b3c651cb7ada1d9f09719959beee0e24b61be2c1e1f4e3009225","seq":7,"ts":1796552008268,"type":"rcap_issued"}');
INSERT INTO ledger_entries VALUES(8,'{"body":{"by":"ed25519:7eBYh-zppMaabATtHgbO3UkQ397LzA7niarrK8lcCTc","key":"ed25519:kICSPccp9drqkMSl9PRh2_L-0z5J5_usOPXFsXrfJeA","kind":"node","name":"node.demo-n2","site":"demo"},"prev":"b10f7e2ef0e5fe0fe0feffd103f3085bf6e635e66bb37ea0c232ac580b89b3bc","seq":8,"ts":1796552008273,"type":"principal_added"}');
INSERT INTO ledger_entries VALUES(9,'{"body":{"by":"ed25519:7eBYh-zppMaabATtHgbO3UkQ397LzA7niarrK8lcCTc","capacity":{"cpu_mcores":2000,"disk_mib":20480,"mem_mib":4096,"net_max_kbps":100000,"net_min_kbps":10000},"key":"ed25519:kICSPccp9drqkMSl9PRh2_L-0z5J5_usOPXFsXrfJeA","node":"demo-n2","site":"demo"},"prev":"186717df38708466085ed3642a75e5c7313eadd770f9b45a5ad87dc75307b254","seq":9,"ts":1796552008273,"type":"node_added"}');
INSERT INTO ledger_entries VALUES(10,'{"body":{"rcap":{"holder":"ed25519:-Wr1o9rXMK3FbI4n4Mkpph8-FWuwszW3aFo_PQyXHRE","id":"grant-demo-n2","issuer":"ed25519:7eBYh-zppMaabATtHgbO3UkQ397LzA7niarrK8lcCTc","node":"demo-n2","not_after":1798971208,"not_before":1796551948,"parent":null,"res":{"cpu_mcores":2000,"disk_mib":20480,"mem_mib":4096,"net_max_kbps":100000,"net_min_kbps":10000},"sig":"5_EpcVSAcAb-wvGxVFLs8J7SU1jyQEmMVW_ZQ2PnBoyjE9gNs8kVxlX4tRdf6cnMi5-FKy-js70FYl6Jacv8Cg","v":1}},"prev":"ad829d2ed15d77b670949fdee3e60f3c3dacf527418cd921e383823ad8d4ee4c","seq":10,"ts":1796552008282,"type":"rcap_issued"}');
INSERT INTO ledger_entries VALUES(11,'{"body":{"account":"ed25519:sidN1W6zOydIVa-9Cee-EXmFY7vAlUlTQnMA2iEEJzs","amount":"1000.000000000","by":"ed25519:lk1zyR7m2UuWQXjVePws4UlWkTqXQojCpyVXsTAsscM"},"prev":"0e620b983d97c19dc533d983a1deac84d4e5562b6aff9202f972a889537d5453","seq":11,"ts":1796552008285,"type":"mint"}');
INSERT INTO ledger_entries VALUES(12,'{"body":{"by":"ed25519:sidN1W6zOydIVa-9Cee-EXmFY7vAlUlTQnMA2iEEJzs","expires":1797761608,"site":"demo","slice":"demo_hello"},"prev":"59f8f885295e312568f0330f86536f3ef58d5318f9d8db8e22d26aad06957189","seq":12,"ts":1796552008288,"type":"slice_created"}');
INSERT INTO ledger_entries VALUES(13,'{"body":{"boot_script_sha256":"f03a366e844e6d78747f4b7e953492278766556471b2eb05bd3796645e83b681","by":"ed25519:sidN1W6zOydIVa-9Cee-EXmFY7vAlUlTQnMA2iEEJzs","slice":"demo_hello"},"prev":"50eec8b42e1e0e59ffa624ca8e388120ff6a2fc15dd963ce3eded09aa2b26c4d","seq":13,"ts":1796552008290,"type":"slice_state_set"}');
INSERT INTO ledger_entries VALUES(14,'{"body":{"children":[{"holder":"ed25519:sidN1W6zOydIVa-9Cee-EXmFY7vAlUlTQnMA2iEEJzs","id":"demo-piece-1","issuer":"ed25519:-Wr1o9rXMK3FbI4n4Mkpph8-FWuwszW3aFo_PQyXHRE","node":"demo-n1","not_after":1797156808,"not_before":1796551948,"parent":"grant-demo-n1","res":{"cpu_mcores":500,"disk_mib":1024,"mem_mib":512,"net_max_kbps":10000,"net_min_kbps":1000},"sig":"MgGoB4gnuf_oUt-rz5Wxxo_kDHjuAv5EsjmKvKugwkXWv-GB4SY6wCl6WJXssb_yu2_WVAcpzrhUAEs6jHSBCQ","v":1}],"parent":"grant-demo-n1"},"prev":"0878e423b9c469229413198de79d40fc4233e6930e2819684cb4fc028b0658b5","seq":14,"ts":1796552008292,"type":"rcap_split"}');
INSERT INTO ledger_entries VALUES(15,'{"body":{"rcap":{"holder":"ed25519:sidN1W6zOydIVa-9Cee-EXmFY7vAlUlTQnMA2iEEJzs","id":"demo-piece-1","issuer":"ed25519:-Wr1o9rXMK3FbI4n4Mkpph8-FWuwszW3aFo_PQyXHRE","node":"demo-n1","not_after":1797156808,"not_before":1796551948,"parent":"grant-demo-n1","res":{"cpu_mcores":500,"disk_mib":1024,"mem_mib":512,"net_max_kbps":10000,"net_min_kbps":1000},"sig":"MgGoB4gnuf_oUt-rz5Wxxo_kDHjuAv5EsjmKvKugwkXWv-GB4SY6wCl6WJXssb_yu2_WVAcpzrhUAEs6jHSBCQ","v":1},"slice":"demo_hello"},"prev":"ab07bd3c50af8e4af2c8b9b52f1c63fdfee9210f8f0d69fc3bfaf4b4630c1d54","seq":15,"ts":1796552008295,"type":"rcap_bound"}');
CREATE TABLE ledger_nodes(id INTEGER PRIMARY KEY, hash BLOB NOT NULL);
INSERT INTO ledger_nodes VALUES(0,X'b94a9c28680c46f2a03d55fa10b76fc63632f6b9057708f7f7c1c8c5aa02dcba');
INSERT INTO ledger_nodes VALUES(1,X'2fe4623bbe4970c8e57bae0c9443042bde5d2be9f7324451f2fe75f243367d3d');
INSERT INTO ledger_nodes VALUES(2,X'31956f40ad8d47adb97cef2139b685c21bcdaaf3a669f89ed606a71d9ccb5398');
INSERT INTO ledger_nodes VALUES(3,X'a676a0f54de8aeb92b05d248d87a52b1d043f8a9085b4c8d8247be6a46d11433');
INSERT INTO ledger_nodes VALUES(4,X'be5eb057a3a889cb2f72f9040dc4947052550be561a1dca001b973c457dfa8bf');
INSERT INTO ledger_nodes VALUES(5,X'5c8d8be297ca627599e563527cdc79b3c9baa8d3dbee86b4e437525a6bcb543d');
INSERT INTO ledger_nodes VALUES(6,X'9d03130cd066a0b547d93cd53744d4ddbdb54d51236a72e885659561c30eddaa');
INSERT INTO ledger_nodes VALUES(7,X'b8feb25d3fce79e65ac978af955ec9b889a483ba787197b801057be997392662');
INSERT INTO ledger_nodes VALUES(8,X'dd2692461855721a026e246e5f10c362145afecc7ae98c4c59460429eec170ca');
INSERT INTO ledger_nodes VALUES(9,X'773df812754666b4ad819720463387816068396d2e8f50a2ef3a6fb4a9513f3c');
INSERT INTO ledger_nodes VALUES(10,X'73680cbf283afe16150b8389718bf9ff24ec3f4e3193a78492cee9f53f578204');
INSERT INTO ledger_nodes VALUES(11,X'da5f80a3e4f76ce26870b74ce5cb210e71e933532516ae2359de60ae829a8109');
INSERT INTO ledger_nodes VALUES(12,X'0ff57418c254b3c651cb7ada1d9f09719959beee0e24b61be2c1e1f4e3009225');
INSERT INTO ledger_nodes VALUES(13,X'e4beacbc8c9d20b6010a2900084bed051cd496f7fa36e93909f5b38cd228d5a6');
INSERT INTO ledger_nodes VALUES(14,X'b10f7e2ef0e5fe0fe0feffd103f3085bf6e635e66bb37ea0c232ac580b89b3bc');
INSERT INTO ledger_nodes VALUES(15,X'b331a77e5490dd35c05707bd0c5b3036b61a0d2d40f6f66a19317de3c990a8d5');
INSERT INTO ledger_nodes VALUES(16,X'186717df38708466085ed3642a75e5c7313eadd770f9b45a5ad87dc75307b254');
INSERT INTO ledger_nodes VALUES(17,X'7542d3034b98f0ea8af8d3ade4fb12c58e21648af45136c635be0cba34f7b1ee');
INSERT INTO ledger_nodes VALUES(18,X'ad829d2ed15d77b670949fdee3e60f3c3dacf527418cd921e383823ad8d4ee4c');
INSERT INTO ledger_nodes VALUES(19,X'04079a3ce94ea372509b53a8b687696a5e8aaa2dac2b4f474bb6a8fb990b695b');
INSERT INTO ledger_nodes VALUES(20,X'0e620b983d97c19dc533d983a1deac84d4e5562b6aff9202f972a889537d5453');
INSERT INTO ledger_nodes VALUES(21,X'45927c71ea6a038b137e67f3b708db39496545c5301e2acfdbb56ff4c8e45e41');
INSERT INTO ledger_nodes VALUES(22,X'59f8f885295e312568f0330f86536f3ef58d5318f9d8db8e22d26aad06957189');
INSERT INTO ledger_nodes VALUES(23,X'098a6afc560afd7d5e141e51e3db099e2382f2a487c843138448977fbce7be20');
INSERT INTO ledger_nodes VALUES(24,X'50eec8b42e1e0e59ffa624ca8e388120ff6a2fc15dd963ce3eded09aa2b26c4d');
INSERT INTO ledger_nodes VALUES(25,X'c9ae9e9c811cc4dc887a05ed016d0189d56cfd4447a85f01f426dbcbebe714e7');
INSERT INTO ledger_nodes VALUES(26,X'0878e423b9c469229413198de79d40fc4233e6930e2819684cb4fc028b0658b5');
INSERT INTO ledger_nodes VALUES(27,X'2d1722de44906803d5c435251c1f1209de8464dec6f8d5725db1e33889b91caa');
INSERT INTO ledger_nodes VALUES(28,X'ab07bd3c50af8e4af2c8b9b52f1c63fdfee9210f8f0d69fc3bfaf4b4630c1d54');
INSERT INTO ledger_nodes VALUES(29,X'8aa5d33e7aa6fb414e32e510ae0c86117467ed942df251caecb1b709d184902b');
INSERT INTO ledger_nodes VALUES(30,X'0a34fb1fa8014a92f69cb4adc9be772169827a93d77a86cc86aae1138123cccc');
CREATE TABLE ledger_heads(size INTEGER PRIMARY KEY, ts INTEGER NOT NULL, root BLOB NOT NULL, sig BLOB NOT NULL);
INSERT INTO ledger_heads VALUES(0,1796552005053,X'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',X'87b91a76591c61c756d46ca6d8dbe22ff8e70916baefef52d868d896a5a9924c4b2a261d0eb85366e278d2637d5ffa29033287c685dea0db7d4b6c2aeb966f0d');
INSERT INTO ledger_heads VALUES(2,1796552005057,X'2fe4623bbe4970c8e57bae0c9443042bde5d2be9f7324451f2fe75f243367d3d',X'30fb9b5bb6e033817b4d066cd3f56e2e539e18d574e4e9e1de47cecbdd3c5661e6f6502fe36c51d8619e43ee7c644aeef01e2ea080cd6b831dec954fa55e7002');
INSERT INTO ledger_heads VALUES(4,1796552008247,X'a676a0f54de8aeb92b05d248d87a52b1d043f8a9085b4c8d8247be6a46d11433',X'350e18f96fe8bffa7a9165e37437ab6249f7cab8c0c31103d144a33b64e7be7e2ba3d93a58b937bfddcc0fb2b02ff02774b3ed1afbb029eff21c9e6664ccf005');
INSERT INTO ledger_heads VALUES(5,1796552008255,X'3db3d918c7fb460c16e02f8b999a210c3f261382af9c067b5ef7ee277b6e8867',X'787f3aef8679d5a1aa324e13c56e80e3863de135d906607db372d5d51d9f0c9edf2d0e01bdac98a991f4e4d9c71c24e96141c4e87252c4cdaced64c76a081e0c');
INSERT INTO ledger_heads VALUES(7,1796552008260,X'72e8c4d0949de0c32b2ff37598cc9abd0dc6a5b8d089e6c872be1a52572a4ebc',X'7f6e87b0f7a8b6a42cf6d5ea8d0b398b3859fdc6f5f45bd3bd224d944628b1b4293c2b01b7d3067fc6e6c6a63568ba2999e4914da81779b045bcdb7da8576d0f');
INSERT INTO ledger_heads VALUES(8,1796552008268,X'b8feb25d3fce79e65ac978af955ec9b889a483ba787197b801057be997392662',X'f0db77c8d691828728f103edc0888a9b1a75e8cd1d8221c9519936c236005852a772f784737fd15a62f2ca739724b30ec9c39e58f5056b2c4c5e5e0cd854d70f');
INSERT INTO ledger_heads VALUES(10,1796552008273,X'bc40f66356ccc1a74027ef2bed6dd31ba5e6cddc70a4f586f69c5e28b2b05c12',X'cc0d5557f730e0af4538399bf6a8383f598d651b1ccb018eef4d7317957bdbba651eb72ec2359567ea9237e10087cd1826c6bd357d9f7ff4ed86120a09dac70c');
INSERT INTO ledger_heads VALUES(11,1796552008282,X'ea23a8647ab4daf8ab4f11b2459d382d292554abc2256e65e08e8a325186cb4c',X'036e85cf3d38341936e080fdac35539bb1eb1db062bb0dcbeee30af5733029a09ecac84fc66dd9f00a32f1958e9fb9aec3ae90a54f1161a93a5124501ae7840d');
INSERT INTO ledger_heads VALUES(12,1796552008285,X'13eda9f03b03bff2f9bd9c0a08a2f76eb41409c245915844127e512d6fae6188',X'd88a005f371cfd25a7872d0d751107b9bcf83429c4c8c1c559c026bdf5115a7f8efd01d2a73777d8430e21857b2d8c061b63eacdb435d5e02ad18df9fe880408');
INSERT INTO ledger_heads VALUES(13,1796552008288,X'29888fa3e1b0cc07c83775f3a4f662e1d45caac449d39daaaaa9b407a6d01fd2',X'b72cafd24c4794ab8e3a540abf23754aaf9b4d19e778838a3a380e91c4a30d35b25573ac24970f3290cdc356a140a2f861afc856d6ef01242b6d890c0af75b0b');
INSERT INTO ledger_heads VALUES(14,1796552008290,X'30773bf1dc0e86021e110e3f806fcfc4edc7f64771b2cbeeef7a7aa0cc436ca8',X'8f09d70cafcf3f9d84464ebdfe03726d3caea44bf10da02be463d831aec8cd1860143b11006fc40b156b5a8f090e747bbacf0b22659f22bc16939297ce4b7a08');
INSERT INTO ledger_heads VALUES(15,1796552008292,X'585d847b47723930d47d1e9583fd073c4ed5eb414312bd57640a6b34d86b8fa8',X'c125d79ada16175cc9f398d4651c7c1a7941ea417bb283c1daf5c9b73208ba49bf663f49463da0196426eae4b01046d22f10bcd5243d2b3b3b60b0d56d3cc20a');
INSERT INTO ledger_heads VALUES(16,1796552008295,X'b331a77e5490dd35c05707bd0c5b3036b61a0d2d40f6f66a19317de3c990a8d5',X'e3b3c3a217a5be37c2cad45189cde3b3e714c6d78470417a6ee0cd7cc1f1a30a39de8571b9ddffb4113c9b6d0955fc76d6ca02ec83eaad0a4986431e55d00c0a');
CREATE TABLE b_principals(key TEXT PRIMARY KEY, kind TEXT NOT NULL,
  name TEXT NOT NULL UNIQUE, site TEXT, created_ms INTEGER NOT NULL);
INSERT INTO b_principals VALUES('ed25519:-Wr1o9rXMK3FbI4n4Mkpph8-FWuwszW3aFo_PQyXHRE','broker','broker',NULL,1796552005057);
INSERT INTO b_principals VALUES('ed25519:lk1zyR7m2UuWQXjVePws4UlWkTqXQojCpyVXsTAsscM','admin','admin',NULL,1796552005057);
INSERT INTO b_principals VALUES('ed25519:7eBYh-zppMaabATtHgbO3UkQ397LzA7niarrK8lcCTc','site','demo.pi','demo',1796552008247);
INSERT INTO b_principals VALUES('ed25519:sidN1W6zOydIVa-9Cee-EXmFY7vAlUlTQnMA2iEEJzs','user','alice','demo',1796552008255);
INSERT INTO b_principals VALUES('ed25519:vTDFBBMf-cnrG5Dwyyi8DbIMFoKJMAoWP3Nr7NGTDqI','node','node.demo-n1','demo',1796552008260);
INSERT INTO b_principals VALUES('ed25519:kICSPccp9drqkMSl9PRh2_L-0z5J5_usOPXFsXrfJeA','node','node.demo-n2','demo',1796552008273);
CREATE TABLE b_sites(name TEXT PRIMARY KEY, pi TEXT NOT NULL,
  slice_limit INTEGER NOT NULL, created_ms INTEGER NOT NULL);
INSERT INTO b_sites VALUES('demo','ed25519:7eBYh-zppMaabATtHgbO3UkQ397LzA7niarrK8lcCTc',10,1796552008247);
CREATE TABLE b_nodes(id TEXT PRIMARY KEY, site TEXT NOT NULL, key TEXT NOT NULL UNIQUE,
  capacity TEXT NOT NULL, created_ms INTEGER NOT NULL);
INSERT INTO b_nodes VALUES('demo-n1','demo','ed25519:vTDFBBMf-cnrG5Dwyyi8DbIMFoKJMAoWP3Nr7NGTDqI','{"cpu_mcores":2000,"disk_mib":20480,"mem_mib":4096,"net_max_kbps":100000,"net_min_kbps":10000}',1796552008260);
INSERT INTO b_nodes VALUES('demo-n2','demo','ed25519:kICSPccp9drqkMSl9PRh2_L-0z5J5_usOPXFsXrfJeA','{"cpu_mcores":2000,"disk_mib":20480,"mem_mib":4096,"net_max_kbps":100000,"net_min_kbps":10000}',1796552008273);
CREATE TABLE b_slices(name TEXT PRIMARY KEY, site TEXT NOT NULL, creator TEXT NOT NULL,
  owners TEXT NOT NULL, ssh_keys TEXT NOT NULL, boot_script TEXT NOT NULL, resources TEXT NOT NULL,
  nodes TEXT NOT NULL, description TEXT NOT NULL, expires INTEGER NOT NULL,
  created_ms INTEGER NOT NULL);
INSERT INTO b_slices VALUES('demo_hello','demo','ed25519:sidN1W6zOydIVa-9Cee-EXmFY7vAlUlTQnMA2iEEJzs','["ed25519:sidN1W6zOydIVa-9Cee-EXmFY7vAlUlTQnMA2iEEJzs"]','[]',replace('#!/bin/sh\necho hello from demo_hello\n','\n',char(10)),'null','["demo-n1"]','the demo slice',1797761608,1796552008288);
CREATE TABLE b_rcaps(id TEXT PRIMARY KEY, holder TEXT NOT NULL, node TEXT NOT NULL,
  parent TEXT, not_before INTEGER NOT NULL, not_after INTEGER NOT NULL, body TEXT NOT NULL);
INSERT INTO b_rcaps VALUES('grant-demo-n1','ed25519:-Wr1o9rXMK3FbI4n4Mkpph8-FWuwszW3aFo_PQyXHRE','demo-n1',NULL,1796551948,1798971208,'{"holder":"ed25519:-Wr1o9rXMK3FbI4n4Mkpph8-FWuwszW3aFo_PQyXHRE","id":"grant-demo-n1","issuer":"ed25519:7eBYh-zppMaabATtHgbO3UkQ397LzA7niarrK8lcCTc","node":"demo-n1","not_after":1798971208,"not_before":1796551948,"parent":null,"res":{"cpu_mcores":2000,"disk_mib":20480,"mem_mib":4096,"net_max_kbps":100000,"net_min_kbps":10000},"sig":"3UvrZNAH_f-VIBiKZ3sczTaKeSncj_BGn18pUJ-MSRTLUhSVuVqEJH8uqRJYUs6uADl_o6gqAEpAI_ufVcctDw","v":1}');
INSERT INTO b_rcaps VALUES('grant-demo-n2','ed25519:-Wr1o9rXMK3FbI4n4Mkpph8-FWuwszW3aFo_PQyXHRE','demo-n2',NULL,1796551948,1798971208,'{"holder":"ed25519:-Wr1o9rXMK3FbI4n4Mkpph8-FWuwszW3aFo_PQyXHRE","id":"grant-demo-n2","issuer":"ed25519:7eBYh-zppMaabATtHgbO3UkQ397LzA7niarrK8lcCTc","node":"demo-n2","not_after":1798971208,"not_before":1796551948,"parent":null,"res":{"cpu_mcores":2000,"disk_mib":20480,"mem_mib":4096,"net_max_kbps":100000,"net_min_kbps":10000},"sig":"5_EpcVSAcAb-wvGxVFLs8J7SU1jyQEmMVW_ZQ2PnBoyjE9gNs8kVxlX4tRdf6cnMi5-FKy-js70FYl6Jacv8Cg","v":1}');
INSERT INTO b_rcaps VALUES('demo-piece-1','ed25519:sidN1W6zOydIVa-9Cee-EXmFY7vAlUlTQnMA2iEEJzs','demo-n1','grant-demo-n1',1796551948,1797156808,'{"holder":"ed25519:sidN1W6zOydIVa-9Cee-EXmFY7vAlUlTQnMA2iEEJzs","id":"demo-piece-1","issuer":"ed25519:-Wr1o9rXMK3FbI4n4Mkpph8-FWuwszW3aFo_PQyXHRE","node":"demo-n1","not_after":1797156808,"not_before":1796551948,"parent":"grant-demo-n1","res":{"cpu_mcores":500,"disk_mib":1024,"mem_mib":512,"net_max_kbps":10000,"net_min_kbps":1000},"sig":"MgGoB4gnuf_oUt-rz5Wxxo_kDHjuAv5EsjmKvKugwkXWv-GB4SY6wCl6WJXssb_yu2_WVAcpzrhUAEs6jHSBCQ","v":1}');
CREATE TABLE b_bindings(leaf TEXT PRIMARY KEY, slice TEXT NOT NULL, node TEXT NOT NULL,
  chain TEXT NOT NULL, not_after INTEGER NOT NULL, created_ms INTEGER NOT NULL);
INSERT INTO b_bindings VALUES('demo-piece-1','demo_hello','demo-n1','[{"holder":"ed25519:-Wr1o9rXMK3FbI4n4Mkpph8-FWuwszW3aFo_PQyXHRE","id":"grant-demo-n1","issuer":"ed25519:7eBYh-zppMaabATtHgbO3UkQ397LzA7niarrK8lcCTc","node":"demo-n1","not_after":1798971208,"not_before":1796551948,"parent":null,"res":{"cpu_mcores":2000,"disk_mib":20480,"mem_mib":4096,"net_max_kbps":100000,"net_min_kbps":10000},"sig":"3UvrZNAH_f-VIBiKZ3sczTaKeSncj_BGn18pUJ-MSRTLUhSVuVqEJH8uqRJYUs6uADl_o6gqAEpAI_ufVcctDw","v":1},{"holder":"ed25519:sidN1W6zOydIVa-9Cee-EXmFY7vAlUlTQnMA2iEEJzs","id":"demo-piece-1","issuer":"ed25519:-Wr1o9rXMK3FbI4n4Mkpph8-FWuwszW3aFo_PQyXHRE","node":"demo-n1","not_after":1797156808,"not_before":1796551948,"parent":"grant-demo-n1","res":{"cpu_mcores":500,"disk_mib":1024,"mem_mib":512,"net_max_kbps":10000,"net_min_kbps":1000},"sig":"MgGoB4gnuf_oUt-rz5Wxxo_kDHjuAv5EsjmKvKugwkXWv-GB4SY6wCl6WJXssb_yu2_WVAcpzrhUAEs6jHSBCQ","v":1}]',1797156808,1796552008295);
CREATE TABLE b_redemptions(rcap TEXT NOT NULL, state TEXT NOT NULL, node TEXT NOT NULL,
  slice TEXT NOT NULL, reason TEXT, detail TEXT, ts INTEGER NOT NULL, seq INTEGER NOT NULL,
  PRIMARY KEY(rcap, state));
CREATE TABLE b_usage(node TEXT NOT NULL, id TEXT NOT NULL, slice TEXT NOT NULL,
  rcap TEXT NOT NULL, from_s INTEGER NOT NULL, to_s INTEGER NOT NULL, cpu_usec INTEGER NOT NULL,
  net_tx_bytes INTEGER NOT NULL, disk_used_mib INTEGER NOT NULL, seq INTEGER NOT NULL,
  PRIMARY KEY(node, id));
CREATE TABLE b_history(account TEXT NOT NULL, seq INTEGER NOT NULL,
  PRIMARY KEY(account, seq));
INSERT INTO b_history VALUES('ed25519:sidN1W6zOydIVa-9Cee-EXmFY7vAlUlTQnMA2iEEJzs',11);
CREATE TABLE b_nonces(ts INTEGER NOT NULL, key TEXT NOT NULL, nonce TEXT NOT NULL,
  PRIMARY KEY(ts, key, nonce)) WITHOUT ROWID;
INSERT INTO b_nonces VALUES(1796552008,'ed25519:7eBYh-zppMaabATtHgbO3UkQ397LzA7niarrK8lcCTc','-VNwPkNE2hQXaCWAqgDuHw');
INSERT INTO b_nonces VALUES(1796552008,'ed25519:7eBYh-zppMaabATtHgbO3UkQ397LzA7niarrK8lcCTc','AdCNDS0JsudbG1FOjw7ifw');
INSERT INTO b_nonces VALUES(1796552008,'ed25519:7eBYh-zppMaabATtHgbO3UkQ397LzA7niarrK8lcCTc','IwrHRqEQG-7dLMz3JiX9eA');
INSERT INTO b_nonces VALUES(1796552008,'ed25519:7eBYh-zppMaabATtHgbO3UkQ397LzA7niarrK8lcCTc','gMVAtBXXHjN6hsJ1Sl6VlQ');
INSERT INTO b_nonces VALUES(1796552008,'ed25519:7eBYh-zppMaabATtHgbO3UkQ397LzA7niarrK8lcCTc','ux4WQaog23lTMof8UomDYw');
INSERT INTO b_nonces VALUES(1796552008,'ed25519:lk1zyR7m2UuWQXjVePws4UlWkTqXQojCpyVXsTAsscM','-zSmoUHhvTACmSkYu0vYZQ');
INSERT INTO b_nonces VALUES(1796552008,'ed25519:lk1zyR7m2UuWQXjVePws4UlWkTqXQojCpyVXsTAsscM','Ng0aq1QDdIOJbtbaVhUHqw');
INSERT INTO b_nonces VALUES(1796552008,'ed25519:lk1zyR7m2UuWQXjVePws4UlWkTqXQojCpyVXsTAsscM','n4qM1WbfRp0u-7o0TrhItg');
INSERT INTO b_nonces VALUES(1796552008,'ed25519:sidN1W6zOydIVa-9Cee-EXmFY7vAlUlTQnMA2iEEJzs','-b0PGJV6g58BU_Stfc2FKA');
INSERT INTO b_nonces VALUES(1796552008,'ed25519:sidN1W6zOydIVa-9Cee-EXmFY7vAlUlTQnMA2iEEJzs','IQJNOL7CliXXm0mCnyUDXA');
INSERT INTO b_nonces VALUES(1796552008,'ed25519:sidN1W6zOydIVa-9Cee-EXmFY7vAlUlTQnMA2iEEJzs','ih_ogCzKSJd9mly_4lbsOQ');
CREATE TABLE acct_balances(account TEXT PRIMARY KEY, amount TEXT NOT NULL) WITHOUT ROWID;
INSERT INTO acct_balances VALUES('ed25519:sidN1W6zOydIVa-9Cee-EXmFY7vAlUlTQnMA2iEEJzs','1000.000000000');
CREATE TABLE acct_escrows(id TEXT PRIMARY KEY, account TEXT NOT NULL, remaining TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE acct_admins(key TEXT PRIMARY KEY) WITHOUT ROWID;
INSERT INTO acct_admins VALUES('ed25519:lk1zyR7m2UuWQXjVePws4UlWkTqXQojCpyVXsTAsscM');
CREATE TABLE acct_totals(k TEXT PRIMARY KEY, v TEXT NOT NULL) WITHOUT ROWID;
INSERT INTO acct_totals VALUES('minted','1000.000000000');
CREATE TABLE rcap_tickets(id TEXT PRIMARY KEY, parent TEXT, data TEXT NOT NULL, cpu INTEGER NOT NULL, mem INTEGER NOT NULL, disk INTEGER NOT NULL, netmin INTEGER NOT NULL, nb INTEGER NOT NULL, na INTEGER NOT NULL);
INSERT INTO rcap_tickets VALUES('grant-demo-n1',NULL,'{"holder":"ed25519:-Wr1o9rXMK3FbI4n4Mkpph8-FWuwszW3aFo_PQyXHRE","id":"grant-demo-n1","issuer":"ed25519:7eBYh-zppMaabATtHgbO3UkQ397LzA7niarrK8lcCTc","node":"demo-n1","not_after":1798971208,"not_before":1796551948,"parent":null,"res":{"cpu_mcores":2000,"disk_mib":20480,"mem_mib":4096,"net_max_kbps":100000,"net_min_kbps":10000},"sig":"3UvrZNAH_f-VIBiKZ3sczTaKeSncj_BGn18pUJ-MSRTLUhSVuVqEJH8uqRJYUs6uADl_o6gqAEpAI_ufVcctDw","v":1}',2000,4096,20480,10000,1796551948,1798971208);
INSERT INTO rcap_tickets VALUES('grant-demo-n2',NULL,'{"holder":"ed25519:-Wr1o9rXMK3FbI4n4Mkpph8-FWuwszW3aFo_PQyXHRE","id":"grant-demo-n2","issuer":"ed25519:7eBYh-zppMaabATtHgbO3UkQ397LzA7niarrK8lcCTc","node":"demo-n2","not_after":1798971208,"not_before":1796551948,"parent":null,"res":{"cpu_mcores":2000,"disk_mib":20480,"mem_mib":4096,"net_max_kbps":100000,"net_min_kbps":10000},"sig":"5_EpcVSAcAb-wvGxVFLs8J7SU1jyQEmMVW_ZQ2PnBoyjE9gNs8kVxlX4tRdf6cnMi5-FKy-js70FYl6Jacv8Cg","v":1}',2000,4096,20480,10000,1796551948,1798971208);
INSERT INTO rcap_tickets VALUES('demo-piece-1','grant-demo-n1','{"holder":"ed25519:sidN1W6zOydIVa-9Cee-EXmFY7vAlUlTQnMA2iEEJzs","id":"demo-piece-1","issuer":"ed25519:-Wr1o9rXMK3FbI4n4Mkpph8-FWuwszW3aFo_PQyXHRE","node":"demo-n1","not_after":1797156808,"not_before":1796551948,"parent":"grant-demo-n1","res":{"cpu_mcores":500,"disk_mib":1024,"mem_mib":512,"net_max_kbps":10000,"net_min_kbps":1000},"sig":"MgGoB4gnuf_oUt-rz5Wxxo_kDHjuAv5EsjmKvKugwkXWv-GB4SY6wCl6WJXssb_yu2_WVAcpzrhUAEs6jHSBCQ","v":1}',500,512,1024,1000,1796551948,1797156808);
CREATE TABLE rcap_redeemed(id TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE rcap_bound(id TEXT PRIMARY KEY, slice TEXT NOT NULL) WITHOUT ROWID;
INSERT INTO rcap_bound VALUES('demo-piece-1','demo_hello');
CREATE TABLE rcap_nodes(node TEXT PRIMARY KEY, cpu INTEGER NOT NULL, mem INTEGER NOT NULL, disk INTEGER NOT NULL, netmin INTEGER NOT NULL, netmax INTEGER NOT NULL) WITHOUT ROWID;
INSERT INTO rcap_nodes VALUES('demo-n1',2000,4096,20480,10000,100000);
INSERT INTO rcap_nodes VALUES('demo-n2',2000,4096,20480,10000,100000);
CREATE TABLE rcap_roots(id TEXT PRIMARY KEY, node TEXT NOT NULL, cpu INTEGER NOT NULL, mem INTEGER NOT NULL, disk INTEGER NOT NULL, netmin INTEGER NOT NULL, nb INTEGER NOT NULL, na INTEGER NOT NULL);
INSERT INTO rcap_roots VALUES('grant-demo-n1','demo-n1',2000,4096,20480,10000,1796551948,1798971208);
INSERT INTO rcap_roots VALUES('grant-demo-n2','demo-n2',2000,4096,20480,10000,1796551948,1798971208);
CREATE TABLE b_migrations(name TEXT PRIMARY KEY) WITHOUT ROWID;
INSERT INTO b_migrations VALUES('rcap_bound_from_ledger');
CREATE TABLE m_markets(id TEXT PRIMARY KEY, node TEXT NOT NULL, site TEXT NOT NULL,
  unit TEXT NOT NULL, not_before INTEGER NOT NULL, not_after INTEGER NOT NULL,
  close_s INTEGER NOT NULL, holder TEXT NOT NULL, state TEXT NOT NULL, creator TEXT NOT NULL,
  created_ms INTEGER NOT NULL);
CREATE TABLE m_orders(id INTEGER PRIMARY KEY, market TEXT NOT NULL,
  owner TEXT NOT NULL, account TEXT NOT NULL, side TEXT NOT NULL, is_market INTEGER NOT NULL,
  ioc INTEGER NOT NULL, qty INTEGER NOT NULL, price_nanos INTEGER NOT NULL,
  remaining INTEGER NOT NULL, filled INTEGER NOT NULL, state TEXT NOT NULL, reason TEXT NOT NULL,
  prio INTEGER NOT NULL, escrow TEXT NOT NULL, escrow_gen INTEGER NOT NULL,
  cap_escrow TEXT NOT NULL, cap_units INTEGER NOT NULL, cap_sold INTEGER NOT NULL,
  cap_returned INTEGER NOT NULL, returned_rcap TEXT NOT NULL, created_ms INTEGER NOT NULL);
CREATE TABLE m_trades(id INTEGER PRIMARY KEY, market TEXT NOT NULL,
  buy INTEGER NOT NULL, sell INTEGER NOT NULL, buyer TEXT NOT NULL, seller TEXT NOT NULL,
  qty INTEGER NOT NULL, price_nanos INTEGER NOT NULL, rcap TEXT NOT NULL, ts_ms INTEGER NOT NULL);
CREATE TABLE m_rounds(id TEXT PRIMARY KEY, state TEXT NOT NULL,
  close_s INTEGER NOT NULL, not_before INTEGER NOT NULL, not_after INTEGER NOT NULL,
  offers TEXT NOT NULL, result TEXT NOT NULL, creator TEXT NOT NULL, created_ms INTEGER NOT NULL);
CREATE TABLE m_round_bids(id TEXT PRIMARY KEY, round TEXT NOT NULL,
  bidder TEXT NOT NULL, lim TEXT NOT NULL, bundles TEXT NOT NULL, escrow TEXT NOT NULL,
  state TEXT NOT NULL, pay TEXT NOT NULL, rcaps TEXT NOT NULL, created_ms INTEGER NOT NULL);
CREATE TABLE m_share_bids(id TEXT PRIMARY KEY, node TEXT NOT NULL,
  slice TEXT NOT NULL, bidder TEXT NOT NULL, rate TEXT NOT NULL, escrow TEXT NOT NULL,
  charged_to_ms INTEGER NOT NULL, state TEXT NOT NULL, charged TEXT NOT NULL,
  created_ms INTEGER NOT NULL);
CREATE INDEX b_slices_site ON b_slices(site);
CREATE INDEX b_rcaps_holder ON b_rcaps(holder);
CREATE INDEX b_rcaps_parent ON b_rcaps(parent);
CREATE INDEX b_bindings_node ON b_bindings(node);
CREATE INDEX b_bindings_slice ON b_bindings(slice);
CREATE INDEX b_usage_slice ON b_usage(slice, node, to_s);
CREATE INDEX b_usage_node_slice ON b_usage(node, slice, to_s);
CREATE INDEX acct_escrows_account ON acct_escrows(account);
CREATE INDEX rcap_tickets_parent ON rcap_tickets(parent);
CREATE INDEX rcap_roots_node ON rcap_roots(node);
CREATE INDEX m_orders_live ON m_orders(market, state, prio);
CREATE INDEX m_orders_owner ON m_orders(owner, id);
CREATE INDEX m_orders_cap_escrow ON m_orders(cap_escrow) WHERE cap_escrow!='';
CREATE INDEX m_trades_market ON m_trades(market, id);
CREATE INDEX m_round_bids_round ON m_round_bids(round, created_ms);
CREATE INDEX m_share_bids_node ON m_share_bids(node, state);
CREATE INDEX m_share_bids_slice ON m_share_bids(slice, state);
COMMIT;
